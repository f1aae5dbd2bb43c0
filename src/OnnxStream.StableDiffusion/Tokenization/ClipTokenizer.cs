using System.Text.Json;

namespace OnnxStream.StableDiffusion.Tokenization;

/// <summary>
/// The CLIP BPE tokenizer of Stable Diffusion's text encoders (openai/CLIP <c>simple_tokenizer.py</c>, which the
/// Hugging Face <c>CLIPTokenizer</c> reproduces): text clean-up (see <see cref="ClipTextNormalizer"/>), CLIP's
/// pre-split pattern, byte-level BPE with the <c>&lt;/w&gt;</c> end-of-word mark, then start token, at most
/// <see cref="MaxLength"/> − 2 prompt tokens, end token and padding.
/// </summary>
/// <remarks>Thread-safe: a loaded tokenizer is immutable.</remarks>
public sealed class ClipTokenizer
{
    private readonly Dictionary<string, int> _ids;
    private readonly BytePairEncoder _bpe;

    private ClipTokenizer(ClipVocabulary vocabulary, ClipTokenizerOptions options, string? padFromFolder, string source)
    {
        if (options.MaxLength < 2)
            throw new ArgumentOutOfRangeException(nameof(options), $"MaxLength is {options.MaxLength}; it must leave room for the start and end tokens.");
        _ids = vocabulary.Ids;
        _bpe = new BytePairEncoder(vocabulary.Merges);
        MaxLength = options.MaxLength;
        StartTokenId = _ids[ClipVocabulary.StartToken];
        EndTokenId = _ids[ClipVocabulary.EndToken];
        var pad = options.PadToken ?? padFromFolder;
        PadTokenId = pad is null ? EndTokenId
            : _ids.TryGetValue(pad, out var padId) ? padId
            : throw new InvalidDataException($"{source}: the pad token '{pad}' is not in the vocabulary.");
    }

    /// <summary>The id of <c>&lt;|startoftext|&gt;</c>.</summary>
    public int StartTokenId { get; }

    /// <summary>The id of <c>&lt;|endoftext|&gt;</c>.</summary>
    public int EndTokenId { get; }

    /// <summary>The id that fills the ids after the end token (see <see cref="ClipTokenizerOptions.PadToken"/>).</summary>
    public int PadTokenId { get; }

    /// <summary>The number of ids <see cref="Tokenize"/> returns.</summary>
    public int MaxLength { get; }

    /// <summary>The number of tokens in the vocabulary.</summary>
    public int VocabularySize => _ids.Count;

    /// <summary>
    /// Loads a tokenizer folder: <c>vocab.json</c> (Hugging Face) or else <c>vocab.txt</c> (the original OnnxStream
    /// app's one-token-a-line file), with <c>merges.txt</c>; the pad token comes from <c>special_tokens_map.json</c>
    /// when present and <see cref="ClipTokenizerOptions.PadToken"/> is not set.
    /// </summary>
    public static ClipTokenizer FromFolder(string folder, ClipTokenizerOptions? options = null)
    {
        var json = Path.Combine(folder, "vocab.json");
        var text = Path.Combine(folder, "vocab.txt");
        var merges = Path.Combine(folder, "merges.txt");
        var vocab = File.Exists(json) ? json : File.Exists(text) ? text
            : throw new FileNotFoundException($"The tokenizer folder {folder} has neither vocab.json nor vocab.txt.", text);
        if (!File.Exists(merges))
            throw new FileNotFoundException($"The tokenizer folder {folder} has no merges.txt.", merges);
        return new ClipTokenizer(ClipVocabulary.Load(vocab, merges), options ?? new(), ReadPadToken(Path.Combine(folder, "special_tokens_map.json")), vocab);
    }

    /// <summary>Loads a vocabulary file (<c>.json</c>: Hugging Face token → id; otherwise one token a line, line
    /// index = id) and a merges file (one "a b" a line in rank order, an optional "#version" header line).</summary>
    public static ClipTokenizer FromFiles(string vocabPath, string mergesPath, ClipTokenizerOptions? options = null) =>
        new(ClipVocabulary.Load(vocabPath, mergesPath), options ?? new(), null, vocabPath);

    /// <summary>Builds the tokenizer from openai/CLIP's own <c>bpe_simple_vocab_16e6.txt.gz</c>.</summary>
    public static ClipTokenizer FromOpenAiBpe(string bpeGzPath, ClipTokenizerOptions? options = null) =>
        new(ClipVocabulary.LoadOpenAiBpe(bpeGzPath), options ?? new(), null, bpeGzPath);

    /// <summary>The id of a vocabulary token, or null when it has none.</summary>
    public int? TokenId(string token) => _ids.TryGetValue(token, out var id) ? id : null;

    /// <summary>The token ids of <paramref name="text"/>: no start, end or padding tokens, no truncation.</summary>
    public int[] Encode(string text)
    {
        var ids = new List<int>();
        foreach (var piece in ClipTextNormalizer.Split(ClipTextNormalizer.Clean(text)))
        {
            if (piece is ClipVocabulary.StartToken or ClipVocabulary.EndToken)
            {
                ids.Add(_ids[piece]);
                continue;
            }
            foreach (var symbol in _bpe.Encode(ByteLevelAlphabet.Encode(piece)))
                ids.Add(_ids[symbol]);
        }
        return [.. ids];
    }

    /// <summary>The <see cref="MaxLength"/> ids of <paramref name="text"/> taken literally (no emphasis syntax):
    /// start token, the first <see cref="MaxLength"/> − 2 tokens, end token, padding.</summary>
    public int[] Tokenize(string text) => Frame([new(Encode(text), 1f)]).Ids;

    /// <summary>
    /// The <see cref="MaxLength"/> ids of a prompt with emphasis syntax (<see cref="PromptEmphasis.Parse"/>), each
    /// with its weight: every run of text is tokenized on its own, as webui does, and its tokens take its weight.
    /// </summary>
    public TokenizedPrompt TokenizeWeighted(string prompt) =>
        Frame(PromptEmphasis.Parse(prompt).Select(f => (Encode(f.Text), (float)f.Weight)).ToList());

    private TokenizedPrompt Frame(List<(int[] Ids, float Weight)> runs)
    {
        var ids = new int[MaxLength];
        var weights = new float[MaxLength];
        Array.Fill(ids, PadTokenId);
        Array.Fill(weights, 1f);
        ids[0] = StartTokenId;
        var position = 1;
        foreach (var (runIds, weight) in runs)
            foreach (var id in runIds)
            {
                if (position == MaxLength - 1) break;
                weights[position] = weight;
                ids[position++] = id;
            }
        ids[position] = EndTokenId;
        return new TokenizedPrompt(ids, weights);
    }

    private static string? ReadPadToken(string specialTokensMap)
    {
        if (!File.Exists(specialTokensMap)) return null;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(specialTokensMap));
            if (!document.RootElement.TryGetProperty("pad_token", out var pad)) return null;
            // Either "pad_token": "!" or "pad_token": { "content": "!", ... } (Hugging Face AddedToken).
            return pad.ValueKind == JsonValueKind.String ? pad.GetString()
                : pad.ValueKind == JsonValueKind.Object && pad.TryGetProperty("content", out var content) ? content.GetString()
                : null;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{specialTokensMap}: not valid JSON ({e.Message}).", e);
        }
    }
}
