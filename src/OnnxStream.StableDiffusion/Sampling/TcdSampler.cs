namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// Trajectory Consistency Distillation sampling (diffusers <c>TCDScheduler.step</c>, γ = its <c>eta</c>) in σ form:
/// from timestep t, jump to s = ⌊(1 − γ)·t_prev⌋ (t_prev the next timestep, 0 after the last):
/// x_s = D + σ_s·(x − D)/σ (the DDIM jump), then, except at the last step and when γ = 0, renoise to t_prev:
/// x ← x_s + √(σ_prev² − σ_s²)·z. The sample ends at σ₀ (ᾱ₀), as in diffusers.
/// </summary>
internal sealed class TcdSampler : Sampler
{
    private readonly NoiseSchedule _schedule;
    private readonly int[] _timesteps;
    private readonly double _gamma;

    public TcdSampler(NoiseSchedule schedule, int[] timesteps, IGaussianNoise noise, double gamma)
        : base("tcd", schedule.SigmasAt(timesteps, schedule.SigmaMin), noise)
    {
        _schedule = schedule;
        _timesteps = timesteps;
        _gamma = gamma;
    }

    private protected override void StepCore(int i, Span<float> x, Denoiser denoiser, float[] denoised)
    {
        var sigma = Sigmas[i];
        denoiser(x, sigma, denoised);
        var last = i == StepCount - 1;
        var previous = last ? 0 : _timesteps[i + 1];
        // diffusers computes floor((1 − γ)·t_prev) in float32.
        var s = (int)MathF.Floor((float)(1 - _gamma) * previous);
        var sigmaS = _schedule.TrainingSigmas[s];
        EulerStep(x, denoised, sigma, sigmaS, x);
        if (_gamma > 0 && !last)
        {
            var sigmaPrevious = _schedule.TrainingSigmas[previous];
            AddNoise(x, Math.Sqrt(sigmaPrevious * sigmaPrevious - sigmaS * sigmaS));
        }
    }
}
