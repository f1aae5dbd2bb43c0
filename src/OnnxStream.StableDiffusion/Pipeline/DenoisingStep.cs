namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>
/// The latents after one denoising step, for <see cref="StableDiffusionOptions.StepCompleted"/>: both are (1, 4, H/8, W/8),
/// channel-major, as the sampler holds them (not divided by the VAE scaling factor). They are the pipeline's own buffers:
/// read them during the call, copy what is to be kept.
/// </summary>
/// <param name="Image">The image (0-based).</param>
/// <param name="Images">Images in all.</param>
/// <param name="Step">Steps done for this image (1 after the first).</param>
/// <param name="Steps">Steps in all for this image.</param>
/// <param name="Seed">The image's seed.</param>
/// <param name="Latent">The latent the sampler carries to the next step (after the last step, the final latent).</param>
/// <param name="Denoised">The step's estimate of the final latent (the last x₀ prediction of the guided UNet).</param>
/// <param name="LatentHeight">Latent rows.</param>
/// <param name="LatentWidth">Latent columns.</param>
public readonly record struct DenoisingStep(int Image, int Images, int Step, int Steps, long Seed, ReadOnlyMemory<float> Latent,
    ReadOnlyMemory<float> Denoised, int LatentHeight, int LatentWidth);
