namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// DPM-Solver++ (stochastic) (k-diffusion <c>sample_dpmpp_sde</c>, r = ½): an ancestral first-order step to the
/// λ-midpoint σ_s = √(σ·σ_next) with noise, the model there, then an ancestral step to σ_next with
/// D′ = (1 − 1/2r)·D + (1/2r)·D_s = D_s, and noise again; the last step is Euler.
/// k-diffusion draws the noise from a Brownian tree; here each draw is fresh standard normal noise from the sampler's
/// stream, which has the same distribution (the two increments of a Brownian path over disjoint intervals are
/// independent), not the same values.
/// </summary>
internal sealed class DpmPlusPlusSdeSampler(double[] sigmas, IGaussianNoise noise, double eta) : SecondOrderSampler("dpmpp_sde", sigmas, noise)
{
    private protected override void SecondOrderStep(
        double sigma, double next, Span<float> x, Denoiser denoiser, float[] denoised, float[] x2, float[] denoised2)
    {
        var mid = Math.Exp((Math.Log(sigma) + Math.Log(next)) / 2);
        var (down, up) = AncestralStep(sigma, mid, eta);
        EulerStep(x, denoised, sigma, down, x2);
        AddNoise(x2, up);
        denoiser(x2, mid, denoised2);

        (down, up) = AncestralStep(sigma, next, eta);
        EulerStep(x, denoised2, sigma, down, x);
        AddNoise(x, up);
    }
}
