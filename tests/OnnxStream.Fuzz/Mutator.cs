using System.Buffers.Binary;
using System.Text;

namespace OnnxStream.Fuzz;

/// <summary>
/// A deterministic mutator: the same seed and corpus give the same inputs on every machine. Binary edits (bit flips,
/// byte insertion and deletion, duplicated ranges, interesting integers, splices of two corpus entries) and, for text
/// formats, token edits (a number replaced by an interesting one, a token or a line deleted, repeated or swapped).
/// </summary>
public sealed class Mutator(int seed, bool text)
{
    private static readonly long[] InterestingIntegers =
        [0, 1, -1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, int.MaxValue, int.MinValue, uint.MaxValue, long.MaxValue, long.MinValue];

    private static readonly string[] InterestingNumbers =
        ["0", "-1", "1", "-0", "00", "2147483647", "2147483648", "-2147483648", "4294967296", "9223372036854775807", "99999999999999999999",
         "1e39", "-1e39", "NaN", "inf", "1e-46", "0x10", "+1", " 1", "", "3.5", "65536", "1073741824"];

    private static readonly char[] Delimiters = ['*', ':', ';', ',', '(', ')', '[', ']', '\n', ' ', '{', '}', '"', '\'', '\0'];

    private readonly Random _random = new(seed);

    /// <summary>A new input: one to four edits of a corpus entry.</summary>
    public byte[] Next(IReadOnlyList<byte[]> corpus)
    {
        var data = corpus[_random.Next(corpus.Count)];
        var edits = 1 + _random.Next(4);
        for (var i = 0; i < edits; i++)
            data = text && _random.Next(2) == 0 ? TextEdit(data) : BinaryEdit(data, corpus);
        return data;
    }

    private byte[] BinaryEdit(byte[] data, IReadOnlyList<byte[]> corpus)
    {
        var list = new List<byte>(data);
        switch (_random.Next(8))
        {
            case 0 when list.Count > 0: // flip one bit
                var bit = _random.Next(list.Count * 8);
                list[bit / 8] ^= (byte)(1 << (bit % 8));
                break;
            case 1 when list.Count > 0: // set one byte
                list[_random.Next(list.Count)] = (byte)_random.Next(256);
                break;
            case 2: // insert a few random bytes
                var insert = new byte[1 + _random.Next(8)];
                _random.NextBytes(insert);
                list.InsertRange(_random.Next(list.Count + 1), insert);
                break;
            case 3 when list.Count > 0: // delete a range
                var start = _random.Next(list.Count);
                list.RemoveRange(start, Math.Min(list.Count - start, 1 + _random.Next(Math.Min(list.Count, 64))));
                break;
            case 4 when list.Count > 0: // repeat a range
                var from = _random.Next(list.Count);
                var length = Math.Min(list.Count - from, 1 + _random.Next(64));
                list.InsertRange(_random.Next(list.Count + 1), list.GetRange(from, length));
                break;
            case 5 when list.Count > 0: // an interesting integer, little-endian, 1, 2, 4 or 8 bytes
                var size = 1 << _random.Next(4);
                var at = _random.Next(list.Count);
                Span<byte> bytes = stackalloc byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(bytes, InterestingIntegers[_random.Next(InterestingIntegers.Length)]);
                for (var i = 0; i < size && at + i < list.Count; i++) list[at + i] = bytes[i];
                break;
            case 6: // splice: this entry's start, another's end
                var other = corpus[_random.Next(corpus.Count)];
                var cut = _random.Next(list.Count + 1);
                list.RemoveRange(cut, list.Count - cut);
                list.AddRange(other.AsSpan(_random.Next(other.Length + 1)).ToArray());
                break;
            default: // truncate
                var keep = _random.Next(list.Count + 1);
                list.RemoveRange(keep, list.Count - keep);
                break;
        }
        return [.. list];
    }

    /// <summary>Token edits: tokens are runs between the delimiters of the project's text formats.</summary>
    private byte[] TextEdit(byte[] data)
    {
        var tokens = Tokenize(Encoding.Latin1.GetString(data));
        if (tokens.Count == 0) return BinaryEdit(data, [data]);
        var i = _random.Next(tokens.Count);
        switch (_random.Next(7))
        {
            case 0: // a number (or anything) becomes an interesting number
            case 1:
                var number = tokens.FindIndex(i, t => t.Length > 0 && (char.IsDigit(t[0]) || t[0] == '-'));
                tokens[number >= 0 ? number : i] = InterestingNumbers[_random.Next(InterestingNumbers.Length)];
                break;
            case 2: // delete a token
                tokens.RemoveAt(i);
                break;
            case 3: // repeat a token
                tokens.Insert(_random.Next(tokens.Count + 1), tokens[i]);
                break;
            case 4: // swap two tokens
                var j = _random.Next(tokens.Count);
                (tokens[i], tokens[j]) = (tokens[j], tokens[i]);
                break;
            case 5: // insert a delimiter
                tokens.Insert(i, Delimiters[_random.Next(Delimiters.Length)].ToString());
                break;
            default: // repeat, delete or swap a whole line
                var lines = string.Concat(tokens).Split('\n').ToList();
                var line = _random.Next(lines.Count);
                var other = _random.Next(lines.Count);
                switch (_random.Next(3))
                {
                    case 0: lines.Insert(other, lines[line]); break;
                    case 1: lines.RemoveAt(line); break;
                    default: (lines[line], lines[other]) = (lines[other], lines[line]); break;
                }
                return Encoding.Latin1.GetBytes(string.Join('\n', lines));
        }
        return Encoding.Latin1.GetBytes(string.Concat(tokens));
    }

    /// <summary>Splits text into tokens and single-character delimiter tokens; concatenated, they give the text back.</summary>
    private static List<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (Array.IndexOf(Delimiters, text[i]) < 0) continue;
            if (i > start) tokens.Add(text[start..i]);
            tokens.Add(text[i].ToString());
            start = i + 1;
        }
        if (start < text.Length) tokens.Add(text[start..]);
        return tokens;
    }
}
