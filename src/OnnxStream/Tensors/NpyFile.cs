using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using OnnxStream.Memory;

namespace OnnxStream.Tensors;

/// <summary>Reads and writes NumPy <c>.npy</c> files (format 1.0–3.0, little-endian, C order) as tensors.</summary>
public static partial class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads a .npy file into a new tensor.</summary>
    /// <exception cref="FormatException">Not a .npy file, an unsupported dtype, big-endian or Fortran order, or truncated data.</exception>
    public static Tensor Read(string path, NativeAllocator? allocator = null)
    {
        using var stream = File.OpenRead(path);
        Span<byte> prefix = stackalloc byte[10];
        if (stream.ReadAtLeast(prefix, 10, throwOnEndOfStream: false) < 10 || !prefix[..6].SequenceEqual(Magic))
            throw new FormatException($"{path} is not a .npy file (no \\x93NUMPY magic).");
        var major = prefix[6];
        int headerLength;
        if (major == 1) headerLength = prefix[8] | prefix[9] << 8;
        else
        {
            Span<byte> more = stackalloc byte[2];
            stream.ReadExactly(more);
            headerLength = prefix[8] | prefix[9] << 8 | more[0] << 16 | more[1] << 24;
        }
        var header = new byte[headerLength];
        if (stream.ReadAtLeast(header, headerLength, throwOnEndOfStream: false) < headerLength)
            throw new FormatException($"{path}: the .npy header is truncated.");
        var text = Encoding.Latin1.GetString(header);
        var descr = HeaderField().Match(text) is { Success: true } d ? d.Groups[1].Value : throw new FormatException($"{path}: no 'descr' in the .npy header.");
        if (text.Contains("'fortran_order': True")) throw new FormatException($"{path}: Fortran-order arrays are not supported.");
        var shapeMatch = ShapeField().Match(text);
        if (!shapeMatch.Success) throw new FormatException($"{path}: no 'shape' in the .npy header.");
        var shape = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
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
        var tensor = Tensor.Allocate(type, shape, allocator);
        if (stream.ReadAtLeast(tensor.Bytes, tensor.Bytes.Length, throwOnEndOfStream: false) < tensor.Bytes.Length)
        {
            tensor.Dispose();
            throw new FormatException($"{path}: the data is shorter than {type} [{string.Join(',', shape)}] needs.");
        }
        return tensor;
    }

    /// <summary>Writes <paramref name="tensor"/> as a .npy (format 1.0) file.</summary>
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
        using var stream = File.Create(path);
        stream.Write(Magic);
        stream.Write([1, 0, (byte)header.Length, (byte)(header.Length >> 8)]);
        stream.Write(header);
        // In slices: a tensor of more than 2 GiB has no single byte span.
        var slice = (1 << 30) / tensor.ElementType.Size();
        for (var start = 0; start < tensor.ElementCount; start += slice)
            stream.Write(tensor.BytesOf(start, Math.Min(slice, tensor.ElementCount - start)));
    }

    [GeneratedRegex(@"'descr':\s*'([^']*)'")]
    private static partial Regex HeaderField();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapeField();
}
