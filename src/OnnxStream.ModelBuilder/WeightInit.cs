namespace OnnxStream.ModelBuilder;

/// <summary>How a parameter's values are made when the model is written: from a seeded generator, never stored in the graph.</summary>
public readonly record struct WeightInit
{
    private WeightInit(float center, float halfWidth) => (Center, HalfWidth) = (center, halfWidth);

    /// <summary>The middle of the uniform range.</summary>
    public float Center { get; }

    /// <summary>Half the width of the uniform range (0: every value is <see cref="Center"/>).</summary>
    public float HalfWidth { get; }

    /// <summary>Uniform in [-bound, bound].</summary>
    public static WeightInit Uniform(float bound) => new(0, bound);

    /// <summary>Uniform in [center - halfWidth, center + halfWidth].</summary>
    public static WeightInit Around(float center, float halfWidth) => new(center, halfWidth);

    /// <summary>
    /// PyTorch's default for Linear and Conv layers (kaiming uniform with a = √5): uniform in ±1/√fan_in,
    /// which keeps activations from growing layer after layer.
    /// </summary>
    public static WeightInit FanIn(long fanIn) => new(0, 1 / MathF.Sqrt(fanIn));
}
