namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// The model as the samplers see it (k-diffusion's convention): given the latent <paramref name="x"/> at noise level
/// <paramref name="sigma"/> (x = x₀ + σ·ε, the variance-exploding form), write the prediction of the clean latent x₀
/// into <paramref name="denoised"/>. For Stable Diffusion's ε-prediction UNet: run it on x·c_in with
/// c_in = 1/√(σ²+1) (<see cref="NoiseSchedule.InputScale"/>) at timestep <see cref="NoiseSchedule.SigmaToTimestep"/>(σ),
/// apply classifier-free guidance, then denoised = x − σ·ε (<see cref="NoiseSchedule.ToDenoised"/>).
/// </summary>
/// <param name="x">The current latent, unscaled.</param>
/// <param name="sigma">Its noise level.</param>
/// <param name="denoised">Receives the x₀ prediction (same length as <paramref name="x"/>).</param>
public delegate void Denoiser(ReadOnlySpan<float> x, double sigma, Span<float> denoised);
