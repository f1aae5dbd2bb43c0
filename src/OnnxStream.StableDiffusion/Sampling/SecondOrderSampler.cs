namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>A sampler that evaluates the model a second time within each step, except on the last step to σ = 0,
/// which is an Euler step (k-diffusion's heun, dpm_2, dpmpp_2s_ancestral, dpmpp_sde).</summary>
internal abstract class SecondOrderSampler(string name, double[] sigmas, IGaussianNoise noise) : Sampler(name, sigmas, noise)
{
    private float[]? _x2, _denoised2;

    private protected sealed override void StepCore(int i, Span<float> x, Denoiser denoiser, float[] denoised)
    {
        double sigma = Sigmas[i], next = Sigmas[i + 1];
        denoiser(x, sigma, denoised);
        if (next == 0)
        {
            EulerStep(x, denoised, sigma, next, x);
            return;
        }
        SecondOrderStep(sigma, next, x, denoiser, denoised, Scratch(ref _x2, x.Length), Scratch(ref _denoised2, x.Length));
    }

    /// <summary>The step from <paramref name="sigma"/> to <paramref name="next"/> &gt; 0, given the first prediction
    /// <paramref name="denoised"/>; <paramref name="x2"/> and <paramref name="denoised2"/> are scratch for the second.</summary>
    private protected abstract void SecondOrderStep(
        double sigma, double next, Span<float> x, Denoiser denoiser, float[] denoised, float[] x2, float[] denoised2);
}
