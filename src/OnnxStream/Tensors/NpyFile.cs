using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using OnnxStream.IO;
using OnnxStream.Memory;

namespace OnnxStream.Tensors;

/// <summary>Reads and writes NumPy <c>.npy</c> files (format 1.0–3.0, little-endian, C order) as tensors.</summary>
public static partial class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>The longest header accepted (NumPy writes under 100 bytes for any real array; it reads up to 10,000 by default).</summary>
    private const int MaxHeaderLength = 1 << 20;

    /// <summary>Reads a .npy file into a new tensor.</summary>
    /// <exception cref="FormatException">
    /// Not a .npy file, a malformed or oversized header or shape, an unsupported dtype, big-endian or Fortran order, or
    /// truncated data; the message names the file.
    /// </exception>
    public static Tensor Read(string path, NativeAllocator? allocator = null)
    {
        using var stream = File.OpenRead(path);
        var (type, shape, dataLength) = ReadHeader(stream, path);
        if (stream.Length - stream.Position < dataLength)
            throw new FormatException($"{path}: the data ({stream.Length - stream.Position} bytes from offset {stream.Position}) is shorter than " +
                                      $"the {dataLength} bytes {type} [{string.Join(',', shape)}] needs.");
        var tensor = Tensor.Allocate(type, shape, allocator);
        if (stream.ReadAtLeast(tensor.Bytes, tensor.Bytes.Length, throwOnEndOfStream: false) < tensor.Bytes.Length)
        {
            tensor.Dispose();
            throw new FormatException($"{path}: the data is shorter than {type} [{string.Join(',', shape)}] needs.");
        }
        return tensor;
    }

    /// <summary>Reads and checks the magic, version and header dictionary; leaves <paramref name="stream"/> at the data.</summary>
    private static (ElementType Type, int[] Shape, long DataLength) ReadHeader(Stream stream, string path)
    {
        Span<byte> prefix = stackalloc byte[12];
        var read = stream.ReadAtLeast(prefix[..10], 10, throwOnEndOfStream: false);
        if (read < 10 || !prefix[..6].SequenceEqual(Magic))
            throw new FormatException($"{path} is not a .npy file (no \\x93NUMPY magic).");
        var major = prefix[6];
        if (major is < 1 or > 3) throw new FormatException($"{path}: .npy format version {major}.{prefix[7]} is not supported (1.0 to 3.0).");
        long headerLength = prefix[8] | prefix[9] << 8;
        if (major > 1)
        {
            if (stream.ReadAtLeast(prefix[10..], 2, throwOnEndOfStream: false) < 2) throw new FormatException($"{path}: the .npy header is truncated.");
            headerLength = BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..12]);
        }
        if (headerLength > MaxHeaderLength)
            throw new FormatException($"{path}: the .npy header length {headerLength} (at offset 8) is over the {MaxHeaderLength} accepted.");
        var header = new byte[headerLength];
        if (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length)
            throw new FormatException($"{path}: the .npy header is truncated ({headerLength} bytes announced at offset 8).");
        var text = Encoding.Latin1.GetString(header);
        var descr = HeaderField().Match(text) is { Success: true } d ? d.Groups[1].Value : throw new FormatException($"{path}: no 'descr' in the .npy header.");
        if (text.Contains("'fortran_order': True")) throw new FormatException($"{path}: Fortran-order arrays are not supported.");
        var shapeMatch = ShapeField().Match(text);
        if (!shapeMatch.Success) throw new FormatException($"{path}: no 'shape' in the .npy header.");
        var type = descr switch
        {
            "<f4" => ElementType.Float32,
            "<f2" => ElementType.Float16,
            "<i8" => ElementType.Int64,
            "<i4" => ElementType.Int32,
            "|u1" => ElementType.UInt8,
            "|b1" => ElementType.Bool,
            _ => throw new FormatException($"{path}: dtype '{descr}' is not supported (float32, float16, int64, int32, uint8, bool; little-endian)."),
        };
        var dims = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var shape = new int[dims.Length];
        for (var i = 0; i < dims.Length; i++)
            if (!int.TryParse(dims[i], NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]))
                throw new FormatException($"{path}: dimension {i} of the .npy shape, '{dims[i]}', is not a whole number from 0 to {int.MaxValue}.");
        if (!Kernels.Shapes.FitsInTensor(shape))
            throw new FormatException($"{path}: the .npy shape ({string.Join(", ", dims)}) has more than {int.MaxValue} elements, more than a tensor holds.");
        return (type, shape, Kernels.Shapes.ElementCount(shape) * type.Size());
    }

    /// <summary>Writes <paramref name="tensor"/> as a .npy (format 1.0) file, atomically (see <see cref="AtomicFile"/>).</summary>
    public static void Write(string path, Tensor tensor)
    {
        var descr = tensor.ElementType switch
        {
            ElementType.Float32 => "<f4",
            ElementType.Float16 => "<f2",
            ElementType.Int64 => "<i8",
            ElementType.Int32 => "<i4",
            ElementType.UInt8 => "|u1",
            _ => "|b1",
        };
        var shape = tensor.Shape.Length == 1 ? $"({tensor.Shape[0]},)" : $"({string.Join(", ", tensor.Shape)})";
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        // The header (magic, version, length, dict, padding, newline) is padded to a multiple of 64 bytes.
        var padding = 63 - (10 + dict.Length) % 64;
        var header = Encoding.Latin1.GetBytes(dict + new string(' ', padding) + "\n");
        using var file = AtomicFile.Create(path);
        file.Stream.Write(Magic);
        file.Stream.Write([1, 0, (byte)header.Length, (byte)(header.Length >> 8)]);
        file.Stream.Write(header);
        // In slices: a tensor of more than 2 GiB has no single byte span.
        var slice = (1 << 30) / tensor.ElementType.Size();
        for (var start = 0; start < tensor.ElementCount; start += slice)
            file.Stream.Write(tensor.BytesOf(start, Math.Min(slice, tensor.ElementCount - start)));
        file.Commit();
    }

    [GeneratedRegex(@"'descr':\s*'([^']*)'")]
    private static partial Regex HeaderField();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapeField();
}
