namespace OnnxStream.StableDiffusion.Tokenization;

/// <summary>A run of prompt text and the emphasis weight its tokens get.</summary>
/// <param name="Text">The text, with the emphasis syntax removed.</param>
/// <param name="Weight">The weight (1 = no emphasis).</param>
public readonly record struct PromptFragment(string Text, double Weight);
