namespace OnnxStream.StableDiffusion.Tokenization;

/// <summary>
/// Byte-level BPE with CLIP's end-of-word mark: a piece (already in <see cref="ByteLevelAlphabet"/> characters)
/// starts as one symbol per character, the last one carrying <c>&lt;/w&gt;</c>; the adjacent pair of lowest merge
/// rank is merged everywhere (left to right) until no adjacent pair has a rank.
/// </summary>
internal sealed class BytePairEncoder
{
    /// <summary>The end-of-word mark appended to a piece's last symbol.</summary>
    public const string EndOfWord = "</w>";

    private readonly Dictionary<(string, string), int> _ranks;

    /// <param name="merges">The merges in rank order (index = rank).</param>
    public BytePairEncoder(IReadOnlyList<(string Left, string Right)> merges)
    {
        _ranks = new Dictionary<(string, string), int>(merges.Count);
        for (var rank = 0; rank < merges.Count; rank++)
            _ranks.TryAdd(merges[rank], rank); // a repeated merge keeps its first (lowest) rank
    }

    /// <summary>The symbols of one piece after all merges.</summary>
    public List<string> Encode(string piece)
    {
        var word = new List<string>(piece.Length);
        for (var i = 0; i < piece.Length; i++)
            word.Add(i == piece.Length - 1 ? piece[i] + EndOfWord : piece[i].ToString());

        while (word.Count > 1)
        {
            (string, string)? best = null;
            var bestRank = int.MaxValue;
            for (var i = 0; i + 1 < word.Count; i++)
                if (_ranks.TryGetValue((word[i], word[i + 1]), out var rank) && rank < bestRank)
                {
                    bestRank = rank;
                    best = (word[i], word[i + 1]);
                }
            if (best is not { } pair) break;

            var merged = new List<string>(word.Count);
            for (var i = 0; i < word.Count; i++)
            {
                if (i + 1 < word.Count && word[i] == pair.Item1 && word[i + 1] == pair.Item2)
                {
                    merged.Add(pair.Item1 + pair.Item2);
                    i++;
                }
                else merged.Add(word[i]);
            }
            word = merged;
        }
        return word;
    }
}
