namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// Euler steps, with ancestral noise when η &gt; 0 (k-diffusion <c>sample_euler</c>, <c>sample_euler_ancestral</c>):
/// x ← x + (x − D)/σ·(σ_down − σ), then x ← x + σ_up·z while σ_next &gt; 0.
/// On DDIM's timesteps this is diffusers' DDIM (x_prev = √ᾱ_prev·x₀ + √(1 − ᾱ_prev − s²)·ε + s·z divided by √ᾱ_prev is
/// the same step, s/√ᾱ_prev being σ_up); with η = 1 it is DDPM (the posterior variance).
/// </summary>
internal sealed class EulerSampler(string name, double[] sigmas, IGaussianNoise noise, double eta) : Sampler(name, sigmas, noise)
{
    private protected override void StepCore(int i, Span<float> x, Denoiser denoiser, float[] denoised)
    {
        double sigma = Sigmas[i], next = Sigmas[i + 1];
        denoiser(x, sigma, denoised);
        var (down, up) = AncestralStep(sigma, next, eta);
        EulerStep(x, denoised, sigma, down, x);
        if (next > 0) AddNoise(x, up);
    }
}
