namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>DPM-Solver-2 style midpoint method (k-diffusion <c>sample_dpm_2</c>): an Euler half-step to the geometric
/// midpoint σ_mid = exp(lerp(ln σ, ln σ_next, ½)), then the full step with the slope there; the last step is Euler.</summary>
internal sealed class Dpm2Sampler(double[] sigmas, IGaussianNoise noise) : SecondOrderSampler("dpm2", sigmas, noise)
{
    private protected override void SecondOrderStep(
        double sigma, double next, Span<float> x, Denoiser denoiser, float[] denoised, float[] x2, float[] denoised2)
    {
        var mid = Math.Exp(Math.Log(sigma) + 0.5 * (Math.Log(next) - Math.Log(sigma)));
        EulerStep(x, denoised, sigma, mid, x2);
        denoiser(x2, mid, denoised2);
        var dt = next - sigma;
        for (var j = 0; j < x.Length; j++)
            x[j] = (float)(x[j] + (x2[j] - (double)denoised2[j]) / mid * dt);
    }
}
