using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using OnnxStream.IO;

namespace OnnxStream.ModelBuilder;

/// <summary>When the parameters go to an external data file instead of the .onnx file.</summary>
public enum ExternalDataPolicy
{
    /// <summary>When the model would not fit in one protobuf message (2 GiB), with a margin.</summary>
    Auto,

    /// <summary>Always.</summary>
    Always,

    /// <summary>Never (fails for models over the protobuf limit).</summary>
    Never,
}

/// <summary>How <see cref="OnnxModelWriter"/> writes a model.</summary>
public sealed class OnnxWriteOptions
{
    /// <summary>The seed of the parameters' values: the same seed writes the same bytes.</summary>
    public long Seed { get; set; }

    /// <summary>Where the parameters go.</summary>
    public ExternalDataPolicy ExternalData { get; set; } = ExternalDataPolicy.Auto;
}

/// <summary>What <see cref="OnnxModelWriter.Write"/> wrote.</summary>
/// <param name="ModelPath">The .onnx file.</param>
/// <param name="ExternalDataPath">The external data file, or null when the parameters are inside the .onnx file.</param>
/// <param name="TotalBytes">The bytes of both files together.</param>
public sealed record OnnxWriteResult(string ModelPath, string? ExternalDataPath, long TotalBytes);

/// <summary>
/// Streams an <see cref="OnnxGraphBuilder"/>'s graph to disk, making each parameter's seeded values in a
/// small buffer as it goes: memory stays at a few megabytes whatever the model's size. The protobuf is
/// written by hand around the data (the graph without initializers is serialized by Google.Protobuf,
/// each initializer's header too, and the raw_data fields are appended with their precomputed lengths).
/// </summary>
public static class OnnxModelWriter
{
    /// <summary>Inline models stay this far under protobuf's 2 GiB message limit.</summary>
    private const long InlineLimitBytes = 2L * 1024 * 1024 * 1024 - 64L * 1024 * 1024;

    /// <summary>External data offsets are multiples of this (a page: readers may map tensors in place).</summary>
    private const int ExternalAlignment = 4096;

    private const int ChunkElements = 1 << 16;

    private static readonly byte[] Padding = new byte[ExternalAlignment];

    /// <summary>
    /// Writes <paramref name="graph"/> to <paramref name="path"/> (and, for external data,
    /// <c>path + "_data"</c>, the name optimum's exports use). <paramref name="progress"/> hears the
    /// fraction of parameter bytes written. The files are written under temporary names and renamed at the end
    /// (<see cref="AtomicFile"/>): a failed or cancelled write leaves no partial file.
    /// </summary>
    /// <param name="graph">The graph.</param>
    /// <param name="path">The .onnx file to write.</param>
    /// <param name="options">The seed and external data policy.</param>
    /// <param name="progress">Hears the fraction of parameter bytes written.</param>
    /// <param name="cancellationToken">Checked every 64 Ki values; a cancelled write leaves nothing behind.</param>
    public static OnnxWriteResult Write(OnnxGraphBuilder graph, string path, OnnxWriteOptions? options = null, IProgress<double>? progress = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new OnnxWriteOptions();
        path = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var elementSize = OnnxGraphBuilder.ElementSize(graph.FloatType);
        var external = options.ExternalData switch
        {
            ExternalDataPolicy.Always => true,
            ExternalDataPolicy.Never => false,
            _ => graph.ParameterBytes > InlineLimitBytes,
        };
        if (!external && graph.ParameterBytes > InlineLimitBytes)
            throw new ArgumentException($"Graph '{graph.Graph.Name}' has {graph.ParameterBytes} bytes of parameters, over protobuf's 2 GiB limit: write it with external data.");

        var dataPath = external ? path + "_data" : null;
        var headers = new List<byte[]>(graph.Parameters.Count);
        long offset = 0;
        foreach (var parameter in graph.Parameters)
        {
            var header = parameter.Header.Clone();
            var length = parameter.ElementCount * elementSize;
            if (external)
            {
                header.DataLocation = TensorProto.Types.DataLocation.External;
                header.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = Path.GetFileName(dataPath) });
                header.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                header.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                offset = AlignUp(offset + length);
            }
            headers.Add(header.ToByteArray());
        }

        // Lengths first: graph = graph without initializers + each initializer field.
        var graphBody = graph.Graph.ToByteArray();
        long graphLength = graphBody.Length;
        for (var i = 0; i < headers.Count; i++)
            graphLength += FieldLength(InitializerMessageLength(headers[i], external ? 0 : graph.Parameters[i].ElementCount * elementSize, external));
        var model = new ModelProto { IrVersion = 8, ProducerName = "OnnxStream.ModelBuilder", ProducerVersion = "1" };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = graph.Opset });

        var total = graph.ParameterBytes;
        long written = 0;
        var buffer = ArrayPool<float>.Shared.Rent(ChunkElements);
        var halves = ArrayPool<Half>.Shared.Rent(ChunkElements);
        try
        {
            using var outputFile = AtomicFile.Create(path, 1 << 20);
            using var dataFile = dataPath is null ? null : AtomicFile.Create(dataPath, 1 << 20);
            var output = outputFile.Stream;
            var data = dataFile?.Stream;
            output.Write(model.ToByteArray());
            WriteTag(output, ModelProto.GraphFieldNumber);
            WriteVarint(output, (ulong)graphLength);
            output.Write(graphBody);
            for (var i = 0; i < headers.Count; i++)
            {
                var parameter = graph.Parameters[i];
                var length = parameter.ElementCount * elementSize;
                WriteTag(output, GraphProto.InitializerFieldNumber);
                WriteVarint(output, (ulong)InitializerMessageLength(headers[i], external ? 0 : length, external));
                output.Write(headers[i]);
                Stream target;
                if (data is not null)
                {
                    target = data;
                    data.Write(Padding.AsSpan(0, (int)(AlignUp(data.Position) - data.Position)));
                }
                else
                {
                    target = output;
                    WriteTag(output, TensorProto.RawDataFieldNumber);
                    WriteVarint(output, (ulong)length);
                }
                WriteValues(target, parameter, options.Seed, graph.FloatType, buffer, halves, bytes =>
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    written += bytes;
                    progress?.Report(total == 0 ? 1 : (double)written / total);
                });
            }
            var totalBytes = output.Length + (data?.Length ?? 0);
            dataFile?.Commit();
            outputFile.Commit();
            progress?.Report(1);
            return new OnnxWriteResult(path, dataPath, totalBytes);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
            ArrayPool<Half>.Shared.Return(halves);
        }
    }

    private static void WriteValues(Stream target, ParameterDeclaration parameter, long seed, OnnxElementType type,
                                    float[] buffer, Half[] halves, Action<long> wrote)
    {
        var random = SeededRandom.For(seed, parameter.Header.Name);
        for (var done = 0L; done < parameter.ElementCount;)
        {
            var count = (int)Math.Min(ChunkElements, parameter.ElementCount - done);
            var values = buffer.AsSpan(0, count);
            random.Fill(values, parameter.Init.Center, parameter.Init.HalfWidth);
            if (type == OnnxElementType.Float16)
            {
                TensorPrimitives.ConvertToHalf(values, halves.AsSpan(0, count));
                target.Write(MemoryMarshal.AsBytes(halves.AsSpan(0, count)));
                wrote(count * 2L);
            }
            else
            {
                target.Write(MemoryMarshal.AsBytes(values));
                wrote(count * 4L);
            }
            done += count;
        }
    }

    private static long InitializerMessageLength(byte[] header, long rawLength, bool external) =>
        header.Length + (external ? 0 : FieldLength(rawLength));

    /// <summary>A length-delimited field's bytes for a field number under 16: tag, length varint, payload.</summary>
    private static long FieldLength(long payload) => 1 + VarintSize((ulong)payload) + payload;

    private static int VarintSize(ulong value)
    {
        var size = 1;
        while (value >= 0x80) { value >>= 7; size++; }
        return size;
    }

    private static void WriteTag(Stream stream, int fieldNumber) => WriteVarint(stream, (ulong)(fieldNumber << 3 | 2));

    private static void WriteVarint(Stream stream, ulong value)
    {
        Span<byte> bytes = stackalloc byte[10];
        var n = 0;
        while (value >= 0x80)
        {
            bytes[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        bytes[n++] = (byte)value;
        stream.Write(bytes[..n]);
    }

    private static long AlignUp(long offset) => (offset + ExternalAlignment - 1) / ExternalAlignment * ExternalAlignment;
}
