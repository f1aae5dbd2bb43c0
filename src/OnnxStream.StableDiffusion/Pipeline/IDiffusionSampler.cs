namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>
/// The denoised estimate D(x, σ) of the latent <paramref name="latent"/> at noise level <paramref name="sigma"/>
/// (the model with guidance, k-diffusion style), written to <paramref name="denoised"/>.
/// </summary>
public delegate void Denoiser(ReadOnlySpan<float> latent, float sigma, Span<float> denoised);

/// <summary>
/// One sampler run (the pipeline's sampler seam): advances the latent from <c>sigmas[step]</c> to
/// <c>sigmas[step + 1]</c>. An instance serves one image (multistep samplers keep history).
/// </summary>
public interface IDiffusionSampler
{
    /// <summary>Advances <paramref name="latent"/> one step, calling <paramref name="denoise"/> as often as the method needs.</summary>
    /// <param name="step">The step index.</param>
    /// <param name="sigmas">All noise levels, ending with 0.</param>
    /// <param name="latent">The latent, updated in place.</param>
    /// <param name="denoise">The model.</param>
    /// <param name="noise">Fresh noise for ancestral and SDE methods.</param>
    void Step(int step, IReadOnlyList<float> sigmas, Span<float> latent, Denoiser denoise, GaussianNoise noise);
}

/// <summary>
/// Euler ancestral (the original's default), the only sampler here until the sampler library
/// (OnnxStream.StableDiffusion.Sampling) replaces this behind <see cref="IDiffusionSampler"/>.
/// </summary>
public sealed class InterimEulerAncestralSampler : IDiffusionSampler
{
    /// <inheritdoc />
    public void Step(int step, IReadOnlyList<float> sigmas, Span<float> latent, Denoiser denoise, GaussianNoise noise)
    {
        var sigma = sigmas[step];
        var next = sigmas[step + 1];
        var denoised = new float[latent.Length];
        denoise(latent, sigma, denoised);
        var up = next == 0 ? 0 : Math.Min(next, Math.Sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma)));
        var down = Math.Sqrt(next * next - up * up);
        var dt = down - sigma;
        for (var i = 0; i < latent.Length; i++)
            latent[i] += (float)((latent[i] - denoised[i]) / sigma * dt);
        if (up == 0) return;
        var fresh = new float[latent.Length];
        noise.Fill(fresh);
        for (var i = 0; i < latent.Length; i++) latent[i] += (float)(fresh[i] * up);
    }
}
