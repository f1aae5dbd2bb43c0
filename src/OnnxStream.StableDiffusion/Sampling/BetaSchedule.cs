namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>How the training noise betas go from <see cref="NoiseScheduleOptions.BetaStart"/> to
/// <see cref="NoiseScheduleOptions.BetaEnd"/> (diffusers' <c>beta_schedule</c>).</summary>
public enum BetaSchedule
{
    /// <summary><c>scaled_linear</c>: β linear in √β (Stable Diffusion 1.x/2.x, SDXL).</summary>
    ScaledLinear,

    /// <summary><c>linear</c>: β linear.</summary>
    Linear,
}
