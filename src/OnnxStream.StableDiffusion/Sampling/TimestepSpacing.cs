namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>How DDIM and DDPM pick their timesteps among the training ones (diffusers' <c>timestep_spacing</c>).</summary>
public enum TimestepSpacing
{
    /// <summary><c>leading</c>: 0, N/n, 2N/n, ... (integer ratio) plus <see cref="NoiseScheduleOptions.StepsOffset"/>.</summary>
    Leading,

    /// <summary><c>trailing</c>: N − 1, N − 1 − N/n, ... rounded.</summary>
    Trailing,

    /// <summary><c>linspace</c>: n values from N − 1 down to 0, rounded.</summary>
    Linspace,
}
