namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>Heun's second-order method (k-diffusion <c>sample_heun</c>, Karras et al. 2022 algorithm 2 without churn):
/// an Euler step to σ_next, then the average of the two slopes; the last step (to σ = 0) is plain Euler.</summary>
internal sealed class HeunSampler(double[] sigmas, IGaussianNoise noise) : SecondOrderSampler("heun", sigmas, noise)
{
    private protected override void SecondOrderStep(
        double sigma, double next, Span<float> x, Denoiser denoiser, float[] denoised, float[] x2, float[] denoised2)
    {
        EulerStep(x, denoised, sigma, next, x2);
        denoiser(x2, next, denoised2);
        var dt = next - sigma;
        for (var j = 0; j < x.Length; j++)
        {
            var d = (x[j] - (double)denoised[j]) / sigma;
            var d2 = (x2[j] - (double)denoised2[j]) / next;
            x[j] = (float)(x[j] + (d + d2) / 2 * dt);
        }
    }
}
