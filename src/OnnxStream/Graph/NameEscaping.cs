using System.Text;

namespace OnnxStream.Graph;

/// <summary>
/// model.txt name escaping: every character that is not an ASCII letter or digit is written as
/// <c>_XX_</c> with XX its code in uppercase hex (<c>.</c> → <c>_2E_</c>, <c>_</c> → <c>_5F_</c>).
/// </summary>
public static class NameEscaping
{
    private const string HexDigits = "0123456789ABCDEF";

    /// <summary>Escapes a name the way the original converter does.</summary>
    public static string Escape(string name)
    {
        var builder = new StringBuilder(name.Length * 2);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in name.EnumerateRunes())
        {
            if (rune.IsAscii && char.IsAsciiLetterOrDigit((char)rune.Value))
            {
                builder.Append((char)rune.Value);
                continue;
            }
            var length = rune.EncodeToUtf8(utf8);
            foreach (var b in utf8[..length]) builder.Append('_').Append(HexDigits[b >> 4]).Append(HexDigits[b & 15]).Append('_');
        }
        return builder.ToString();
    }

    /// <summary>Undoes <see cref="Escape"/>; false if <paramref name="escaped"/> has a malformed sequence.</summary>
    public static bool TryUnescape(string escaped, out string name)
    {
        var bytes = new List<byte>(escaped.Length);
        for (var i = 0; i < escaped.Length; i++)
        {
            var c = escaped[i];
            if (c != '_')
            {
                if (c > 127) { name = escaped; return false; }
                bytes.Add((byte)c);
                continue;
            }
            if (i + 3 >= escaped.Length || escaped[i + 3] != '_' || !byte.TryParse(escaped.AsSpan(i + 1, 2),
                    System.Globalization.NumberStyles.AllowHexSpecifier, null, out var code))
            {
                name = escaped;
                return false;
            }
            bytes.Add(code);
            i += 3;
        }
        name = Encoding.UTF8.GetString(bytes.ToArray());
        return true;
    }
}
