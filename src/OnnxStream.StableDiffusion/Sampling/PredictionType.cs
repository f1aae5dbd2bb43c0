namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>What the UNet predicts (diffusers' <c>prediction_type</c>).</summary>
public enum PredictionType
{
    /// <summary><c>epsilon</c>: the noise ε (SD 1.x, SDXL).</summary>
    Epsilon,

    /// <summary><c>v_prediction</c>: v = √ᾱ·ε − √(1−ᾱ)·x₀ (SD 2.x 768).</summary>
    VPrediction,
}
