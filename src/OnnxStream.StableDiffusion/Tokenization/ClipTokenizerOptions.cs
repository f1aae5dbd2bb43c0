namespace OnnxStream.StableDiffusion.Tokenization;

/// <summary>Settings of a <see cref="ClipTokenizer"/>.</summary>
public sealed class ClipTokenizerOptions
{
    /// <summary>The number of ids the text encoder takes, start and end tokens included (77 for every
    /// Stable Diffusion text encoder).</summary>
    public int MaxLength { get; set; } = 77;

    /// <summary>
    /// The token that fills the ids after the end token. Null: the <c>pad_token</c> of the folder's
    /// <c>special_tokens_map.json</c> when there is one, otherwise the end token (<c>&lt;|endoftext|&gt;</c>, as the
    /// SD 1.5 tokenizer and SDXL's first one pad). SDXL's second tokenizer pads with <c>!</c> (id 0).
    /// </summary>
    public string? PadToken { get; set; }
}
