using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>
/// A plain CLIP byte-level BPE tokenizer (no emphasis syntax, no ftfy cleanup), so the pipeline runs end to end
/// until the full tokenizer (OnnxStream.StableDiffusion.Tokenization) replaces it behind <see cref="ITextTokenizer"/>.
/// Reads the original's <c>vocab.txt</c> (one token a line, id = line) or Hugging Face's <c>vocab.json</c>, and
/// <c>merges.txt</c>; the start and end ids come from the vocabulary.
/// </summary>
public sealed partial class InterimClipTokenizer : ITextTokenizer
{
    /// <summary>CLIP's context length.</summary>
    public const int Length = 77;

    private readonly Dictionary<string, int> _vocabulary;
    private readonly Dictionary<(string, string), int> _mergeRanks = [];
    private readonly string[] _byteToChar = ByteToUnicode();
    private readonly int _start;
    private readonly int _end;

    /// <summary>Reads the tokenizer files of <paramref name="folder"/>.</summary>
    public InterimClipTokenizer(string folder)
    {
        var json = Path.Combine(folder, "vocab.json");
        var text = Path.Combine(folder, "vocab.txt");
        if (File.Exists(json))
            _vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(json))
                          ?? throw new FormatException($"{json}: not a JSON object of token ids.");
        else if (File.Exists(text))
        {
            _vocabulary = [];
            var id = 0;
            foreach (var line in File.ReadLines(text)) _vocabulary.TryAdd(line, id++);
        }
        else throw new FileNotFoundException($"No tokenizer vocabulary: expected {text} or {json}.", text);
        var merges = Path.Combine(folder, "merges.txt");
        if (!File.Exists(merges)) throw new FileNotFoundException($"No tokenizer merges: expected {merges}.", merges);
        foreach (var line in File.ReadLines(merges))
        {
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            var parts = line.Split(' ');
            if (parts.Length == 2) _mergeRanks.TryAdd((parts[0], parts[1]), _mergeRanks.Count);
        }
        _start = Special("<|startoftext|>", folder);
        _end = Special("<|endoftext|>", folder);
    }

    private int Special(string token, string folder) =>
        _vocabulary.TryGetValue(token, out var id) ? id : throw new FormatException($"{folder}: the vocabulary has no {token}.");

    /// <inheritdoc />
    public TokenizedPrompt Encode(string prompt)
    {
        var ids = new List<int> { _start };
        var clean = Whitespace().Replace(WebUtility.HtmlDecode(WebUtility.HtmlDecode(prompt)), " ").Trim().ToLowerInvariant();
        foreach (Match word in Words().Matches(clean))
        {
            var encoded = string.Concat(Encoding.UTF8.GetBytes(word.Value).Select(b => _byteToChar[b]));
            foreach (var piece in Bpe(encoded))
                if (_vocabulary.TryGetValue(piece, out var id)) ids.Add(id);
        }
        if (ids.Count > Length - 1) ids.RemoveRange(Length - 1, ids.Count - (Length - 1));
        while (ids.Count < Length) ids.Add(_end);
        return new TokenizedPrompt(ids.ToArray(), null);
    }

    private List<string> Bpe(string word)
    {
        var symbols = word.Select(c => c.ToString()).ToList();
        symbols[^1] += "</w>";
        while (symbols.Count > 1)
        {
            var best = -1;
            var bestRank = int.MaxValue;
            for (var i = 0; i < symbols.Count - 1; i++)
                if (_mergeRanks.TryGetValue((symbols[i], symbols[i + 1]), out var rank) && rank < bestRank)
                {
                    bestRank = rank;
                    best = i;
                }
            if (best < 0) break;
            var pair = (symbols[best], symbols[best + 1]);
            // Merge every occurrence of the best pair, left to right, as CLIP's bpe() does.
            var merged = new List<string>(symbols.Count);
            for (var i = 0; i < symbols.Count; i++)
            {
                if (i < symbols.Count - 1 && (symbols[i], symbols[i + 1]) == pair)
                {
                    merged.Add(symbols[i] + symbols[i + 1]);
                    i++;
                }
                else merged.Add(symbols[i]);
            }
            symbols = merged;
        }
        return symbols;
    }

    /// <summary>GPT-2's reversible byte → printable character map.</summary>
    private static string[] ByteToUnicode()
    {
        var map = new string[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = ((char)(printable ? b : next++)).ToString();
        }
        return map;
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", RegexOptions.IgnoreCase)]
    private static partial Regex Words();
}
