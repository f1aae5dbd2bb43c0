namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// A model's training noise levels in k-diffusion's form (Katherine Crowson, k-diffusion <c>external.py</c>,
/// <c>DiscreteSchedule</c>): σₜ = √((1 − ᾱₜ)/ᾱₜ) for each training timestep t, with log-σ interpolation between
/// timesteps, and the sampling schedules built on them. Everything is computed in double precision.
/// </summary>
public sealed class NoiseSchedule
{
    private readonly double[] _alphasCumprod;
    private readonly double[] _sigmas;
    private readonly double[] _logSigmas;

    /// <summary>Builds the schedule; null options mean Stable Diffusion's (<see cref="NoiseScheduleOptions"/> defaults).</summary>
    public NoiseSchedule(NoiseScheduleOptions? options = null)
    {
        Options = options ?? new NoiseScheduleOptions();
        var n = Options.TrainTimesteps;
        if (n < 2) throw new ArgumentOutOfRangeException(nameof(options), $"TrainTimesteps is {n}; it must be at least 2.");
        if (!(Options.BetaStart > 0 && Options.BetaEnd < 1 && Options.BetaStart <= Options.BetaEnd))
            throw new ArgumentOutOfRangeException(nameof(options), $"Betas {Options.BetaStart}..{Options.BetaEnd} must satisfy 0 < start <= end < 1.");

        _alphasCumprod = new double[n];
        _sigmas = new double[n];
        _logSigmas = new double[n];
        double product = 1;
        for (var t = 0; t < n; t++)
        {
            var fraction = (double)t / (n - 1);
            var beta = Options.BetaSchedule == BetaSchedule.ScaledLinear
                ? Square(Math.Sqrt(Options.BetaStart) + fraction * (Math.Sqrt(Options.BetaEnd) - Math.Sqrt(Options.BetaStart)))
                : Options.BetaStart + fraction * (Options.BetaEnd - Options.BetaStart);
            product *= 1 - beta;
            _alphasCumprod[t] = product;
            _sigmas[t] = Math.Sqrt((1 - product) / product);
            _logSigmas[t] = Math.Log(_sigmas[t]);
        }
    }

    /// <summary>The options the schedule was built from.</summary>
    public NoiseScheduleOptions Options { get; }

    /// <summary>ᾱₜ for each training timestep.</summary>
    public IReadOnlyList<double> AlphasCumprod => _alphasCumprod;

    /// <summary>σₜ for each training timestep (increasing).</summary>
    public IReadOnlyList<double> TrainingSigmas => _sigmas;

    /// <summary>σ of timestep 0 (≈ 0.0292 for SD).</summary>
    public double SigmaMin => _sigmas[0];

    /// <summary>σ of the last timestep (≈ 14.6146 for SD).</summary>
    public double SigmaMax => _sigmas[^1];

    /// <summary>c_in = 1/√(σ² + 1), the factor the UNet input is scaled by (k-diffusion, σ_data = 1).</summary>
    public static double InputScale(double sigma) => 1 / Math.Sqrt(sigma * sigma + 1);

    /// <summary>σ at a (fractional) timestep: log-σ interpolation between the two neighbouring training timesteps.</summary>
    public double TimestepToSigma(double timestep)
    {
        if (!(timestep >= 0 && timestep <= _sigmas.Length - 1))
            throw new ArgumentOutOfRangeException(nameof(timestep), $"Timestep {timestep} is outside 0..{_sigmas.Length - 1}.");
        var low = (int)Math.Floor(timestep);
        var high = (int)Math.Ceiling(timestep);
        var w = timestep - low;
        return Math.Exp((1 - w) * _logSigmas[low] + w * _logSigmas[high]);
    }

    /// <summary>The (fractional) timestep of σ, the inverse of <see cref="TimestepToSigma"/>; clamped to 0..N−1.
    /// A training σ gives back its timestep exactly.</summary>
    public double SigmaToTimestep(double sigma)
    {
        var logSigma = Math.Log(sigma);
        // The last training index whose log σ is <= log σ, kept below the last so that low + 1 exists.
        var low = 0;
        while (low + 1 < _logSigmas.Length - 1 && _logSigmas[low + 1] <= logSigma) low++;
        var w = (_logSigmas[low] - logSigma) / (_logSigmas[low] - _logSigmas[low + 1]);
        w = Math.Clamp(w, 0, 1);
        return (1 - w) * low + w * (low + 1);
    }

    /// <summary>k-diffusion's default schedule (<c>get_sigmas</c>): σ at <paramref name="steps"/> timesteps evenly
    /// spaced from N − 1 down to 0, then 0. Length steps + 1.</summary>
    public double[] KDiffusionSigmas(int steps)
    {
        CheckSteps(steps);
        var sigmas = new double[steps + 1];
        var last = _sigmas.Length - 1;
        for (var k = 0; k < steps; k++)
            sigmas[k] = TimestepToSigma(steps == 1 ? last : last - (double)k * last / (steps - 1));
        return sigmas;
    }

    /// <summary>The Karras et al. (2022) schedule (k-diffusion <c>get_sigmas_karras</c>) between <see cref="SigmaMax"/>
    /// and <see cref="SigmaMin"/>: σₖ = (σ_max^(1/ρ) + k/(n−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, then 0.</summary>
    public double[] KarrasSigmas(int steps, double rho = 7)
    {
        CheckSteps(steps);
        var sigmas = new double[steps + 1];
        var maxInvRho = Math.Pow(SigmaMax, 1 / rho);
        var minInvRho = Math.Pow(SigmaMin, 1 / rho);
        for (var k = 0; k < steps; k++)
        {
            var ramp = steps == 1 ? 0 : (double)k / (steps - 1);
            sigmas[k] = Math.Pow(maxInvRho + ramp * (minInvRho - maxInvRho), rho);
        }
        return sigmas;
    }

    /// <summary>DDIM's and DDPM's timesteps as diffusers' <c>set_timesteps</c> picks them for
    /// <see cref="NoiseScheduleOptions.TimestepSpacing"/>, decreasing (e.g. 901, 801, ..., 1 for 10 leading steps).</summary>
    public int[] SpacedTimesteps(int steps)
    {
        CheckSteps(steps);
        var n = _sigmas.Length;
        var timesteps = new int[steps];
        for (var k = 0; k < steps; k++)
            timesteps[k] = Options.TimestepSpacing switch
            {
                TimestepSpacing.Leading => (steps - 1 - k) * (n / steps) + Options.StepsOffset,
                // numpy rounds half to even, as Math.Round does by default.
                TimestepSpacing.Trailing => (int)Math.Round(n - k * ((double)n / steps)) - 1,
                _ => (int)Math.Round(steps == 1 ? 0 : (steps - 1 - k) * ((double)(n - 1) / (steps - 1))),
            };
        if (timesteps.Any(t => t < 0 || t >= n))
            throw new ArgumentOutOfRangeException(nameof(steps),
                $"{steps} steps with {Options.TimestepSpacing} spacing and offset {Options.StepsOffset} leave the training timesteps 0..{n - 1}.");
        return timesteps;
    }

    /// <summary>LCM's and TCD's timesteps (diffusers <c>LCMScheduler</c>/<c>TCDScheduler.set_timesteps</c>): the
    /// distillation schedule k·c − 1 (k = 1..<see cref="NoiseScheduleOptions.OriginalInferenceSteps"/>,
    /// c = N / original steps), reversed, taken at evenly spaced indices (999, 759, 499, 259 for 4 steps).</summary>
    public int[] ConsistencyTimesteps(int steps)
    {
        CheckSteps(steps);
        var original = Options.OriginalInferenceSteps;
        if (original < 1 || original > _sigmas.Length || steps > original)
            throw new ArgumentOutOfRangeException(nameof(steps),
                $"{steps} steps cannot be taken from {original} original inference steps over {_sigmas.Length} training timesteps.");
        var stride = _sigmas.Length / original;
        var timesteps = new int[steps];
        for (var k = 0; k < steps; k++)
        {
            // np.floor(np.linspace(0, original, steps, endpoint=False)), computed the way numpy does.
            var index = (int)Math.Floor(k * ((double)original / steps));
            timesteps[k] = (original - index) * stride - 1;
        }
        return timesteps;
    }

    /// <summary>The training σ of each timestep, then <paramref name="final"/>: a sampler's σ table.</summary>
    public double[] SigmasAt(IReadOnlyList<int> timesteps, double final) => [.. timesteps.Select(t => _sigmas[t]), final];

    /// <summary>Turns the UNet output at σ into the x₀ prediction the samplers take: ε → x − σ·ε;
    /// v → c_skip·x + c_out·v with c_skip = 1/(σ²+1), c_out = −σ/√(σ²+1) (k-diffusion's VDenoiser).</summary>
    public void ToDenoised(ReadOnlySpan<float> x, ReadOnlySpan<float> modelOutput, double sigma, Span<float> denoised)
    {
        if (modelOutput.Length != x.Length || denoised.Length != x.Length)
            throw new ArgumentException($"The latent ({x.Length}), model output ({modelOutput.Length}) and result ({denoised.Length}) lengths differ.");
        double skip = 1, output = -sigma;
        if (Options.PredictionType == PredictionType.VPrediction)
        {
            skip = 1 / (sigma * sigma + 1);
            output = -sigma * Math.Sqrt(skip);
        }
        for (var i = 0; i < x.Length; i++)
            denoised[i] = (float)(skip * x[i] + output * modelOutput[i]);
    }

    private static double Square(double v) => v * v;

    private static void CheckSteps(int steps)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), $"Steps is {steps}; it must be at least 1.");
    }
}
