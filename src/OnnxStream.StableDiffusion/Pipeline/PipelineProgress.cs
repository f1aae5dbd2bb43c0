using OnnxStream.StableDiffusion.Imaging;

namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>What the pipeline is doing.</summary>
public enum PipelineStage
{
    /// <summary>Running the text encoder(s).</summary>
    EncodingText,
    /// <summary>A denoising step finished.</summary>
    Denoising,
    /// <summary>A decoder tile (or the whole latent) finished.</summary>
    Decoding,
}

/// <summary>A progress report: after each denoising step and each decoded tile.</summary>
/// <param name="Stage">The stage.</param>
/// <param name="Image">The image (0-based).</param>
/// <param name="Images">Images in all.</param>
/// <param name="Step">Steps (denoising) or tiles (decoding) done for this image.</param>
/// <param name="Steps">Steps or tiles in all for this image.</param>
/// <param name="Elapsed">Time since the run started.</param>
/// <param name="PeakBytes">The most tracked native bytes the last model run held at once.</param>
public sealed record PipelineProgress(PipelineStage Stage, int Image, int Images, int Step, int Steps, TimeSpan Elapsed, long PeakBytes);

/// <summary>One generated image and the latent it was decoded from.</summary>
/// <param name="Image">The RGB image.</param>
/// <param name="Latent">The final latent (before the VAE scaling), channel-major.</param>
/// <param name="LatentShape">Its shape, (1, 4, H/8, W/8).</param>
/// <param name="Seed">The seed it was made from.</param>
public sealed record GeneratedImage(RgbImage Image, float[] Latent, int[] LatentShape, long Seed);
