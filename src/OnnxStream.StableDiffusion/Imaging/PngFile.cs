using System.Buffers.Binary;
using System.Text;
using OnnxStream.IO;
using StbImageWriteSharp;

namespace OnnxStream.StableDiffusion.Imaging;

/// <summary>Writes PNG files (StbImageWriteSharp), optionally with tEXt chunks (the generation parameters).</summary>
public static class PngFile
{
    /// <summary>The PNG bytes of <paramref name="image"/>, with a tEXt chunk per <paramref name="text"/> entry right after IHDR.</summary>
    public static byte[] Encode(RgbImage image, IReadOnlyDictionary<string, string>? text = null)
    {
        using var stream = new MemoryStream();
        new ImageWriter().WritePng(image.Pixels, image.Width, image.Height, ColorComponents.RedGreenBlue, stream);
        var png = stream.ToArray();
        if (text is null || text.Count == 0) return png;
        // Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC).
        const int afterHeader = 8 + 25;
        using var output = new MemoryStream();
        output.Write(png, 0, afterHeader);
        foreach (var (keyword, value) in text)
        {
            if (keyword.Length is 0 or > 79) throw new ArgumentException($"PNG text keyword '{keyword}' must have 1 to 79 characters.", nameof(text));
            var data = Encoding.Latin1.GetBytes(keyword).Concat(new byte[] { 0 }).Concat(Encoding.Latin1.GetBytes(value)).ToArray();
            WriteChunk(output, "tEXt", data);
        }
        output.Write(png, afterHeader, png.Length - afterHeader);
        return output.ToArray();
    }

    /// <summary>Writes <paramref name="image"/> to <paramref name="path"/> (see <see cref="Encode"/>).</summary>
    public static void Write(string path, RgbImage image, IReadOnlyDictionary<string, string>? text = null) =>
        AtomicFile.WriteAllBytes(path, Encode(image, text));

    /// <summary>The tEXt entries of a PNG file's bytes.</summary>
    public static Dictionary<string, string> ReadText(ReadOnlySpan<byte> png)
    {
        var entries = new Dictionary<string, string>();
        for (var at = 8; at + 12 <= png.Length;)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(png[at..]);
            var type = Encoding.ASCII.GetString(png.Slice(at + 4, 4));
            if (type == "tEXt")
            {
                var data = png.Slice(at + 8, length);
                var zero = data.IndexOf((byte)0);
                entries[Encoding.Latin1.GetString(data[..zero])] = Encoding.Latin1.GetString(data[(zero + 1)..]);
            }
            at += 12 + length;
        }
        return entries;
    }

    private static void WriteChunk(Stream output, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        output.Write(word);
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        output.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typed));
        output.Write(word);
    }

    /// <summary>The CRC-32 (ISO-HDLC, as PNG uses) of <paramref name="bytes"/>.</summary>
    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
