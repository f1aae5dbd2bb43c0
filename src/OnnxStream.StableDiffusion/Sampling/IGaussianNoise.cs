namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>A source of standard normal values: the initial latent and the noise of ancestral/stochastic samplers.</summary>
public interface IGaussianNoise
{
    /// <summary>Fills <paramref name="destination"/> with the next values of the stream, in order.</summary>
    void Fill(Span<float> destination);
}
