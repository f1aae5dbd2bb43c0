using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace OnnxStream.StableDiffusion.Tokenization;

/// <summary>The token ids and the merges of a CLIP BPE tokenizer, read from one of the three file layouts.</summary>
internal sealed class ClipVocabulary
{
    /// <summary>The start-of-text token.</summary>
    public const string StartToken = "<|startoftext|>";

    /// <summary>The end-of-text token.</summary>
    public const string EndToken = "<|endoftext|>";

    // openai/CLIP uses the first 49152 - 256 - 2 merges of its BPE file; the rest are unused.
    private const int OpenAiMergeCount = 49152 - 256 - 2;

    private ClipVocabulary(Dictionary<string, int> ids, List<(string Left, string Right)> merges, string source)
    {
        Ids = ids;
        Merges = merges;
        Validate(source);
    }

    /// <summary>Token → id.</summary>
    public Dictionary<string, int> Ids { get; }

    /// <summary>The merges in rank order.</summary>
    public List<(string Left, string Right)> Merges { get; }

    /// <summary>Reads vocab.txt (one token a line, line index = id; the original OnnxStream app) or vocab.json
    /// (Hugging Face), and merges.txt (one "a b" a line in rank order, with or without a "#version" header).</summary>
    public static ClipVocabulary Load(string vocabPath, string mergesPath)
    {
        var ids = vocabPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? ReadJson(vocabPath) : ReadLines(vocabPath);
        return new ClipVocabulary(ids, ReadMerges(File.ReadLines(mergesPath), mergesPath, firstMergeLine: 1), $"{vocabPath} with {mergesPath}");
    }

    /// <summary>Builds the vocabulary from openai/CLIP's <c>bpe_simple_vocab_16e6.txt.gz</c> as its
    /// <c>SimpleTokenizer</c> does: the 256 byte characters, the same with <c>&lt;/w&gt;</c>, each merge joined,
    /// then the start and end tokens.</summary>
    public static ClipVocabulary LoadOpenAiBpe(string gzPath)
    {
        var lines = new List<string>();
        try
        {
            using var reader = new StreamReader(new GZipStream(File.OpenRead(gzPath), CompressionMode.Decompress));
            reader.ReadLine(); // header
            for (var line = reader.ReadLine(); line is not null && lines.Count < OpenAiMergeCount; line = reader.ReadLine())
                lines.Add(line);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{gzPath}: not a gzip file ({e.Message})", e);
        }
        if (lines.Count < OpenAiMergeCount)
            throw new InvalidDataException($"{gzPath}: {lines.Count} merges, expected at least {OpenAiMergeCount}.");
        var merges = ReadMerges(lines, gzPath, firstMergeLine: 2);

        var tokens = new List<string>();
        tokens.AddRange(ByteLevelAlphabet.InVocabularyOrder.Select(c => c.ToString()));
        tokens.AddRange(ByteLevelAlphabet.InVocabularyOrder.Select(c => c + BytePairEncoder.EndOfWord));
        tokens.AddRange(merges.Select(m => m.Left + m.Right));
        tokens.Add(StartToken);
        tokens.Add(EndToken);
        var ids = new Dictionary<string, int>(tokens.Count);
        for (var id = 0; id < tokens.Count; id++) ids.TryAdd(tokens[id], id);
        return new ClipVocabulary(ids, merges, gzPath);
    }

    private static Dictionary<string, int> ReadLines(string path)
    {
        var ids = new Dictionary<string, int>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            var token = line.TrimEnd('\r');
            lineNumber++;
            if (token.Length == 0)
                throw new InvalidDataException($"{path} line {lineNumber}: empty token.");
            if (!ids.TryAdd(token, lineNumber - 1))
                throw new InvalidDataException($"{path} line {lineNumber}: token '{token}' already on line {ids[token] + 1}.");
        }
        return ids;
    }

    private static Dictionary<string, int> ReadJson(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize(stream, ClipVocabularyJson.Default.DictionaryStringInt32)
                ?? throw new InvalidDataException($"{path}: expected a JSON object of token → id.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a JSON object of token → id ({e.Message}).", e);
        }
    }

    private static List<(string Left, string Right)> ReadMerges(IEnumerable<string> lines, string path, int firstMergeLine)
    {
        var merges = new List<(string Left, string Right)>();
        var lineNumber = firstMergeLine - 1;
        foreach (var raw in lines)
        {
            lineNumber++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || (lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2)
                throw new InvalidDataException($"{path} line {lineNumber}: expected a merge \"left right\", got \"{line}\".");
            merges.Add((parts[0], parts[1]));
        }
        return merges;
    }

    /// <summary>Everything BPE can produce must have an id, so that encoding never meets an unknown symbol.</summary>
    private void Validate(string source)
    {
        foreach (var special in new[] { StartToken, EndToken })
            if (!Ids.ContainsKey(special))
                throw new InvalidDataException($"{source}: the vocabulary has no {special} token.");
        foreach (var c in ByteLevelAlphabet.ByteToChar)
            foreach (var symbol in new[] { c.ToString(), c + BytePairEncoder.EndOfWord })
                if (!Ids.ContainsKey(symbol))
                    throw new InvalidDataException($"{source}: the vocabulary lacks the byte symbol '{symbol}'.");
        for (var rank = 0; rank < Merges.Count; rank++)
            if (!Ids.ContainsKey(Merges[rank].Left + Merges[rank].Right))
                throw new InvalidDataException(
                    $"{source}: merge {rank} (\"{Merges[rank].Left} {Merges[rank].Right}\") makes a token the vocabulary lacks.");
    }
}

/// <summary>vocab.json's reader, generated at compile time (no reflection, so that trimming and Native AOT keep it working).</summary>
[JsonSerializable(typeof(Dictionary<string, int>))]
internal sealed partial class ClipVocabularyJson : JsonSerializerContext;
