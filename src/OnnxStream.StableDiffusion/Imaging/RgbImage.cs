namespace OnnxStream.StableDiffusion.Imaging;

/// <summary>An 8-bit RGB image, rows top to bottom, pixels interleaved (R, G, B).</summary>
/// <param name="Width">Pixels per row.</param>
/// <param name="Height">Rows.</param>
/// <param name="Pixels">3 · width · height bytes.</param>
public sealed record RgbImage(int Width, int Height, byte[] Pixels);
