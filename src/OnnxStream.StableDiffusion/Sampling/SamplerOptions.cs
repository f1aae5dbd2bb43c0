namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>What <see cref="Sampler.Create"/> builds.</summary>
public sealed class SamplerOptions
{
    /// <summary>The sampler, one of <see cref="Sampler.Names"/>: euler, euler_a (the default, as in the original
    /// app), heun, dpm2, dpmpp_2m, dpmpp_2s_a, dpmpp_sde, lms, ddim, ddpm, lcm, tcd.</summary>
    public string Name { get; set; } = "euler_a";

    /// <summary>The number of sampling steps.</summary>
    public int Steps { get; set; } = 10;

    /// <summary>Use the Karras et al. σ schedule (ρ = 7) instead of k-diffusion's evenly spaced timesteps. Only for
    /// the k-diffusion samplers; ddim, ddpm, lcm and tcd have their own timestep schedules.</summary>
    public bool Karras { get; set; }

    /// <summary>The seed of the <see cref="GaussianNoise"/> stream (initial latent, then the samplers' noise).</summary>
    public long Seed { get; set; }

    /// <summary>
    /// The amount of fresh noise per step, null for each sampler's default: euler_a, dpmpp_2s_a and dpmpp_sde 1
    /// (k-diffusion's η), ddim 0 (diffusers' η; 1 is DDPM's variance), tcd 0.3 (diffusers' γ). Other samplers
    /// ignore it.
    /// </summary>
    public double? Eta { get; set; }
}
