namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// Ancestral DPM-Solver++(2S) (k-diffusion <c>sample_dpmpp_2s_ancestral</c>): to σ_down (the ancestral step) through
/// the λ-midpoint σ_s = √(σ·σ_down): x₂ = (σ_s/σ)·x − expm1(−h/2)·D, then x = (σ_down/σ)·x − expm1(−h)·D(x₂, σ_s),
/// then x += σ_up·z while σ_next &gt; 0. Each first-order DPM-Solver++ update equals an Euler step to the same σ.
/// </summary>
internal sealed class DpmPlusPlus2SAncestralSampler(double[] sigmas, IGaussianNoise noise, double eta) : Sampler("dpmpp_2s_a", sigmas, noise)
{
    private float[]? _x2, _denoised2;

    private protected override void StepCore(int i, Span<float> x, Denoiser denoiser, float[] denoised)
    {
        double sigma = Sigmas[i], next = Sigmas[i + 1];
        denoiser(x, sigma, denoised);
        var (down, up) = AncestralStep(sigma, next, eta);
        if (down == 0)
        {
            EulerStep(x, denoised, sigma, down, x);
        }
        else
        {
            var mid = Math.Exp((Math.Log(sigma) + Math.Log(down)) / 2);
            var x2 = Scratch(ref _x2, x.Length);
            var denoised2 = Scratch(ref _denoised2, x.Length);
            EulerStep(x, denoised, sigma, mid, x2);
            denoiser(x2, mid, denoised2);
            EulerStep(x, denoised2, sigma, down, x);
        }
        if (next > 0) AddNoise(x, up);
    }
}
