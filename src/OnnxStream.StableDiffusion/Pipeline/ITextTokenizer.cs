namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>
/// A prompt as the text encoder takes it: a fixed number of token ids (start token, tokens, end token,
/// padding) and, when the prompt uses emphasis, one weight per id.
/// </summary>
/// <param name="Ids">The token ids (77 for CLIP).</param>
/// <param name="Weights">Per-token emphasis weights (1 = none), or null when no token is emphasized.</param>
public sealed record TokenizedPrompt(int[] Ids, float[]? Weights);

/// <summary>Turns a prompt into CLIP token ids (the pipeline's tokenizer seam).</summary>
public interface ITextTokenizer
{
    /// <summary>Tokenizes <paramref name="prompt"/> to the encoder's fixed length.</summary>
    TokenizedPrompt Encode(string prompt);
}
