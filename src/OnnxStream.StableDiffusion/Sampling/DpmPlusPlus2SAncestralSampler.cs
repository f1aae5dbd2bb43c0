namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// Ancestral DPM-Solver++(2S) (k-diffusion <c>sample_dpmpp_2s_ancestral</c>): to σ_down (the ancestral step) through
/// the λ-midpoint σ_s = √(σ·σ_down): x₂ = (σ_s/σ)·x − expm1(−h/2)·D, then x = (σ_down/σ)·x − expm1(−h)·D(x₂, σ_s),
/// then x += σ_up·z. Each first-order DPM-Solver++ update equals an Euler step to the same σ. (k-diffusion takes
/// the Euler branch when σ_down = 0, which for η ≤ 1 happens exactly on the last step, σ_next = 0.)
/// </summary>
internal sealed class DpmPlusPlus2SAncestralSampler(double[] sigmas, IGaussianNoise noise, double eta)
    : SecondOrderSampler("dpmpp_2s_a", sigmas, noise)
{
    private protected override void SecondOrderStep(
        double sigma, double next, Span<float> x, Denoiser denoiser, float[] denoised, float[] x2, float[] denoised2)
    {
        var (down, up) = AncestralStep(sigma, next, eta);
        var mid = Math.Exp((Math.Log(sigma) + Math.Log(down)) / 2);
        EulerStep(x, denoised, sigma, mid, x2);
        denoiser(x2, mid, denoised2);
        EulerStep(x, denoised2, sigma, down, x);
        AddNoise(x, up);
    }
}
