namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// Latent Consistency Model sampling (diffusers <c>LCMScheduler.step</c>) in σ form: the consistency boundary
/// condition D′ = c_out·D + c_skip·xₜ (xₜ = x/√(σ²+1) the diffusers latent; c_skip = σ_d²/((10t)² + σ_d²),
/// c_out = 10t/√((10t)² + σ_d²), σ_d = 0.5, t the step's integer timestep), then x ← D′ + σ_next·z, or x ← D′ at the
/// last step.
/// </summary>
internal sealed class LcmSampler(int[] timesteps, double[] sigmas, IGaussianNoise noise) : Sampler("lcm", sigmas, noise)
{
    /// <summary>The sampler over the given timesteps: σ of each, then 0.</summary>
    public static LcmSampler Create(int[] timesteps, NoiseSchedule schedule, IGaussianNoise noise) =>
        new(timesteps, schedule.SigmasAt(timesteps, 0), noise);

    private const double SigmaData = 0.5;
    private const double TimestepScaling = 10;

    private protected override void StepCore(int i, Span<float> x, Denoiser denoiser, float[] denoised)
    {
        double sigma = Sigmas[i], next = Sigmas[i + 1];
        denoiser(x, sigma, denoised);
        var scaled = timesteps[i] * TimestepScaling;
        var skip = SigmaData * SigmaData / (scaled * scaled + SigmaData * SigmaData);
        var output = scaled / Math.Sqrt(scaled * scaled + SigmaData * SigmaData);
        var sampleScale = NoiseSchedule.InputScale(sigma);
        for (var j = 0; j < x.Length; j++)
            x[j] = (float)(output * denoised[j] + skip * sampleScale * x[j]);
        if (i < StepCount - 1) AddNoise(x, next);
    }
}
