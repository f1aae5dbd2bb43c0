namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// A diffusion sampler on k-diffusion's σ formulation (Katherine Crowson, k-diffusion <c>sampling.py</c>): the latent
/// is x = x₀ + σ·ε, it starts as noise·σ₀ (<see cref="InitializeLatent"/>) and each <see cref="Step"/> takes it from
/// <see cref="Sigmas"/>[i] to <see cref="Sigmas"/>[i + 1], calling the <see cref="Denoiser"/> once or twice. After the
/// last step the latent is the sample the VAE decodes (after dividing by its scaling factor).
/// DDIM, DDPM, LCM and TCD are the diffusers schedulers rewritten in the same σ form: for a diffusers latent xₜ,
/// x = xₜ/√ᾱₜ.
/// </summary>
/// <remarks>
/// Latents are managed float arrays (4×64×64 for SD 1.5): the sampler keeps a few scratch copies, allocated on the
/// first step. Arithmetic is double per element, stored as float. Not thread-safe; steps must run in order.
/// </remarks>
public abstract class Sampler
{
    private static readonly string[] SamplerNames =
        ["euler", "euler_a", "heun", "dpm2", "dpmpp_2m", "dpmpp_2s_a", "dpmpp_sde", "lms", "ddim", "ddpm", "lcm", "tcd"];

    private readonly double[] _sigmas;
    private readonly IGaussianNoise _noise;
    private float[]? _noiseBuffer;
    private float[]? _denoised;

    private protected Sampler(string name, double[] sigmas, IGaussianNoise noise)
    {
        Name = name;
        _sigmas = sigmas;
        _noise = noise;
    }

    /// <summary>The names <see cref="Create"/> takes.</summary>
    public static IReadOnlyList<string> Names => SamplerNames;

    /// <summary>The sampler's name (see <see cref="Names"/>).</summary>
    public string Name { get; }

    /// <summary>The noise levels: the latent is at σ[i] before step i; <see cref="StepCount"/> + 1 values, the last
    /// 0 except where the scheduler ends at ᾱ₀ (DDIM without set_alpha_to_one, TCD).</summary>
    public IReadOnlyList<double> Sigmas => _sigmas;

    /// <summary>The number of steps.</summary>
    public int StepCount => _sigmas.Length - 1;

    /// <summary>The index of the next step (= steps done).</summary>
    public int StepIndex { get; private set; }

    /// <summary>The denoiser's x₀ prediction at the start of the last step (for previews); empty before the first.</summary>
    public ReadOnlySpan<float> LastDenoised => StepIndex == 0 ? default : _denoised;

    /// <summary>Builds a sampler by name over a model's noise schedule.</summary>
    /// <param name="options">Name, steps, Karras schedule, seed, η.</param>
    /// <param name="schedule">The model's training schedule.</param>
    /// <param name="noise">The noise source; null: <see cref="GaussianNoise"/> of <see cref="SamplerOptions.Seed"/>.</param>
    public static Sampler Create(SamplerOptions options, NoiseSchedule schedule, IGaussianNoise? noise = null)
    {
        var name = options.Name.Trim().ToLowerInvariant();
        if (!SamplerNames.Contains(name))
            throw new ArgumentException($"Unknown sampler '{options.Name}'; the samplers are {string.Join(", ", SamplerNames)}.", nameof(options));
        if (options.Karras && name is "ddim" or "ddpm" or "lcm" or "tcd")
            throw new ArgumentException($"The Karras schedule is for the k-diffusion samplers; {name} has its own timesteps.", nameof(options));
        if (options.Eta is { } eta && !(eta >= 0 && (name != "tcd" || eta <= 1)))
            throw new ArgumentOutOfRangeException(nameof(options), $"Eta {eta} must be >= 0 (and <= 1 for tcd).");
        noise ??= new GaussianNoise(options.Seed);

        var steps = options.Steps;
        double[] KSigmas() => options.Karras ? schedule.KarrasSigmas(steps) : schedule.KDiffusionSigmas(steps);
        double[] AtTimesteps(int[] timesteps, double final) => schedule.SigmasAt(timesteps, final);

        return name switch
        {
            "euler" => new EulerSampler(name, KSigmas(), noise, eta: 0),
            "euler_a" => new EulerSampler(name, KSigmas(), noise, options.Eta ?? 1),
            "heun" => new HeunSampler(KSigmas(), noise),
            "dpm2" => new Dpm2Sampler(KSigmas(), noise),
            "dpmpp_2m" => new DpmPlusPlus2MSampler(KSigmas(), noise),
            "dpmpp_2s_a" => new DpmPlusPlus2SAncestralSampler(KSigmas(), noise, options.Eta ?? 1),
            "dpmpp_sde" => new DpmPlusPlusSdeSampler(KSigmas(), noise, options.Eta ?? 1),
            "lms" => new LmsSampler(KSigmas(), noise),
            // DDIM is Euler in σ form (η adds DDIM's σₜ noise, which equals k-diffusion's ancestral σ_up), DDPM
            // is DDIM with η = 1 (its posterior variance); see EulerSampler.
            "ddim" => new EulerSampler(name,
                AtTimesteps(schedule.SpacedTimesteps(steps), schedule.Options.SetAlphaToOne ? 0 : schedule.SigmaMin), noise, options.Eta ?? 0),
            "ddpm" => new EulerSampler(name, AtTimesteps(schedule.SpacedTimesteps(steps), 0), noise, eta: 1),
            "lcm" => LcmSampler.Create(schedule.ConsistencyTimesteps(steps), schedule, noise),
            _ => new TcdSampler(schedule, schedule.ConsistencyTimesteps(steps), noise, options.Eta ?? 0.3),
        };
    }

    /// <summary>Fills a latent with the first noise of the stream times σ₀ (k-diffusion's x_T = σ_max·ε).</summary>
    public void InitializeLatent(Span<float> latent)
    {
        _noise.Fill(latent);
        foreach (ref var v in latent) v = (float)(v * _sigmas[0]);
    }

    /// <summary>Runs step <see cref="StepIndex"/>: takes <paramref name="x"/> from σ[i] to σ[i + 1] in place.</summary>
    public void Step(Span<float> x, Denoiser denoiser)
    {
        if (StepIndex == StepCount) throw new InvalidOperationException($"All {StepCount} steps of {Name} are done.");
        if (_denoised is null) _denoised = new float[x.Length];
        else if (_denoised.Length != x.Length)
            throw new ArgumentException($"The latent has {x.Length} values; the earlier steps had {_denoised.Length}.", nameof(x));
        StepCore(StepIndex, x, denoiser, _denoised);
        StepIndex++;
    }

    /// <summary>Runs all remaining steps.</summary>
    public void Run(Span<float> x, Denoiser denoiser)
    {
        while (StepIndex < StepCount) Step(x, denoiser);
    }

    /// <summary>Step <paramref name="i"/>: <paramref name="denoised"/> is the scratch for the first denoiser call
    /// (what <see cref="LastDenoised"/> shows).</summary>
    private protected abstract void StepCore(int i, Span<float> x, Denoiser denoiser, float[] denoised);

    /// <summary>A scratch array of the latent's length, allocated once.</summary>
    private protected static float[] Scratch(ref float[]? buffer, int length) => buffer ??= new float[length];

    /// <summary>x += scale·(fresh noise); draws nothing when scale is 0.</summary>
    private protected void AddNoise(Span<float> x, double scale)
    {
        if (scale == 0) return;
        var noise = Scratch(ref _noiseBuffer, x.Length);
        _noise.Fill(noise);
        for (var j = 0; j < x.Length; j++) x[j] = (float)(x[j] + noise[j] * scale);
    }

    /// <summary>
    /// k-diffusion's <c>get_ancestral_step</c>: the σ to step down to and the noise to add so that the result is at
    /// σ_to: σ_up = min(σ_to, η·√(σ_to²(σ_from² − σ_to²)/σ_from²)), σ_down = √(σ_to² − σ_up²).
    /// </summary>
    private protected static (double Down, double Up) AncestralStep(double from, double to, double eta)
    {
        if (eta == 0) return (to, 0);
        var up = Math.Min(to, eta * Math.Sqrt(to * to * (from * from - to * to) / (from * from)));
        return (Math.Sqrt(to * to - up * up), up);
    }

    /// <summary>An Euler step of the probability-flow ODE from σ to <paramref name="target"/>:
    /// result = x + (x − denoised)/σ·(target − σ). <paramref name="result"/> may be <paramref name="x"/>.</summary>
    private protected static void EulerStep(ReadOnlySpan<float> x, ReadOnlySpan<float> denoised, double sigma, double target, Span<float> result)
    {
        var dt = target - sigma;
        for (var j = 0; j < x.Length; j++)
            result[j] = (float)(x[j] + (x[j] - (double)denoised[j]) / sigma * dt);
    }
}
