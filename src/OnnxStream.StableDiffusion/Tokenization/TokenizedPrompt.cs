namespace OnnxStream.StableDiffusion.Tokenization;

/// <summary>A prompt as the text encoder takes it: <see cref="ClipTokenizer.MaxLength"/> token ids and the emphasis
/// weight of each (1 for the start, end and padding tokens).</summary>
/// <param name="Ids">The token ids: start token, the prompt's tokens (truncated), end token, padding.</param>
/// <param name="Weights">One weight per id; see <see cref="PromptEmphasis.Apply"/>.</param>
public sealed record TokenizedPrompt(int[] Ids, float[] Weights)
{
    /// <summary>Whether any token has a weight other than 1 (otherwise the encoder output needs no weighting).</summary>
    public bool HasEmphasis => Weights.Any(w => w != 1f);
}
