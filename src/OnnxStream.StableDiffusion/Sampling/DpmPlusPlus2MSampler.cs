namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// DPM-Solver++(2M) (k-diffusion <c>sample_dpmpp_2m</c>), in λ = −ln σ: x ← (σ_next/σ)·x − expm1(−h)·D′ (−expm1(−h) = 1 − σ_next/σ) with
/// h = ln(σ/σ_next), D′ = (1 + 1/2r)·D − (1/2r)·D_prev, r = h_prev/h; the first and the last step use D′ = D.
/// </summary>
internal sealed class DpmPlusPlus2MSampler(double[] sigmas, IGaussianNoise noise) : Sampler("dpmpp_2m", sigmas, noise)
{
    private float[]? _previous;

    private protected override void StepCore(int i, Span<float> x, Denoiser denoiser, float[] denoised)
    {
        double sigma = Sigmas[i], next = Sigmas[i + 1];
        denoiser(x, sigma, denoised);
        var previous = Scratch(ref _previous, x.Length);
        if (i == 0 || next == 0)
        {
            // (σ_next/σ)·x + (1 − σ_next/σ)·D is the Euler step.
            EulerStep(x, denoised, sigma, next, x);
        }
        else
        {
            var h = Math.Log(sigma) - Math.Log(next);
            var r = (Math.Log(Sigmas[i - 1]) - Math.Log(sigma)) / h;
            double ratio = next / sigma, weight = 1 - ratio, current = 1 + 1 / (2 * r), old = 1 / (2 * r);
            for (var j = 0; j < x.Length; j++)
                x[j] = (float)(ratio * x[j] + weight * (current * denoised[j] - old * previous[j]));
        }
        denoised.CopyTo(previous, 0);
    }
}
