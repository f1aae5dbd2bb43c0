namespace OnnxStream.StableDiffusion.Tokenization;

/// <summary>
/// CLIP's byte-to-unicode alphabet (openai/CLIP <c>bytes_to_unicode</c>): every byte value gets one printable
/// character so that BPE symbols never contain whitespace or control characters. The printable Latin-1 bytes
/// ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the other 68 byte values, in increasing
/// order, get U+0100, U+0101, ...
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The character standing for each byte value.</summary>
    public static readonly char[] ByteToChar = Build();

    /// <summary>The 256 characters in vocabulary order: the self-mapped printable bytes first, then the remapped ones.</summary>
    public static IEnumerable<char> InVocabularyOrder
    {
        get
        {
            var order = new List<char>(256);
            for (var b = 0; b < 256; b++)
                if (IsSelfMapped(b)) order.Add((char)b);
            for (var b = 0; b < 256; b++)
                if (!IsSelfMapped(b)) order.Add(ByteToChar[b]);
            return order;
        }
    }

    /// <summary>Writes the alphabet characters of <paramref name="text"/>'s UTF-8 bytes.</summary>
    public static string Encode(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, static (chars, source) =>
        {
            for (var i = 0; i < source.Length; i++) chars[i] = ByteToChar[source[i]];
        });
    }

    private static bool IsSelfMapped(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;

    private static char[] Build()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
            map[b] = IsSelfMapped(b) ? (char)b : (char)next++;
        return map;
    }
}
