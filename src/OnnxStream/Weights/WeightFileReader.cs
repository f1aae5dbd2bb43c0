using Microsoft.Win32.SafeHandles;
using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Weights;

/// <summary>Reads a weight's bytes from its file (or its inline bytes) straight into a new native tensor.</summary>
public static class WeightFileReader
{
    /// <summary>Reads <paramref name="weight"/>; the caller owns the tensor.</summary>
    public static Tensor Read(TensorDescriptor weight, NativeAllocator allocator)
    {
        var location = weight.Location ?? throw new ArgumentException($"'{weight.Name}' is not a weight.", nameof(weight));
        var tensor = Tensor.Allocate(weight.WeightType!.Value, weight.Shape, allocator, weight.Quantization);
        if (location.Inline is { } inline)
        {
            if (inline.Length != tensor.ByteCount)
            {
                tensor.Dispose();
                throw new ModelFormatException($"constant '{weight.Name}' from {location.Path}: {inline.Length} bytes do not fill {tensor}");
            }
            inline.CopyTo(tensor.Bytes);
            return tensor;
        }
        try
        {
            using SafeFileHandle file = File.OpenHandle(location.Path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            var target = tensor.Bytes;
            if (target.Length != location.Length)
                throw new ModelFormatException($"weight '{weight.Name}': {location.Length} bytes in {location.Path} do not fill {tensor}");
            ReadExactly(file, weight, 0, target);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Fills <paramref name="target"/> with <paramref name="weight"/>'s bytes from <paramref name="offset"/> on (from the weight's start).</summary>
    internal static void ReadExactly(SafeFileHandle file, TensorDescriptor weight, long offset, Span<byte> target)
    {
        var location = weight.Location!;
        var done = 0;
        while (done < target.Length)
        {
            var read = RandomAccess.Read(file, target[done..], location.Offset + offset + done);
            if (read == 0)
                throw new ModelFormatException($"weight file {location.Path} ended after {offset + done} of {location.Length} bytes of '{weight.Name}' (truncated?)");
            done += read;
        }
    }
}

/// <summary>
/// A weight that an operation reads a byte range at a time from its file instead of receiving it whole (see
/// <see cref="Operators.IOperator.ReadsWeightSlices"/>): only the slice in use is in memory.
/// </summary>
public sealed class WeightSliceReader : IDisposable
{
    private readonly SafeFileHandle _file;

    private WeightSliceReader(TensorDescriptor weight, SafeFileHandle file)
    {
        Weight = weight;
        _file = file;
    }

    /// <summary>The weight read.</summary>
    public TensorDescriptor Weight { get; }

    /// <summary>Opens <paramref name="weight"/>'s file (the weight must be stored in a file, not inline).</summary>
    public static WeightSliceReader Open(TensorDescriptor weight)
    {
        var location = weight.Location ?? throw new ArgumentException($"'{weight.Name}' is not a weight.", nameof(weight));
        if (location.Inline is not null) throw new ArgumentException($"'{weight.Name}' is inline, not in a file.", nameof(weight));
        return new WeightSliceReader(weight, File.OpenHandle(location.Path, FileMode.Open, FileAccess.Read, FileShare.Read));
    }

    /// <summary>Reads <paramref name="target"/>'s length of bytes of the weight, from byte <paramref name="offset"/> of it.</summary>
    public void Read(long offset, Span<byte> target)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset + target.Length > Weight.Location!.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes {offset}..{offset + target.Length} are beyond the {Weight.Location.Length} of '{Weight.Name}'");
        WeightFileReader.ReadExactly(_file, Weight, offset, target);
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _file.Dispose();
}
