namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>
/// Seeded standard normal noise, the same on every platform and .NET version: SplitMix64 for the bits,
/// Box–Muller for the normal pairs.
/// </summary>
public sealed class GaussianNoise
{
    private ulong _state;
    private double? _spare;

    /// <summary>A generator starting from <paramref name="seed"/>.</summary>
    public GaussianNoise(long seed) => _state = unchecked((ulong)seed);

    /// <summary>Fills <paramref name="values"/> with independent N(0, 1) samples.</summary>
    public void Fill(Span<float> values)
    {
        for (var i = 0; i < values.Length; i++) values[i] = (float)Next();
    }

    private double Next()
    {
        if (_spare is { } spare)
        {
            _spare = null;
            return spare;
        }
        var u1 = (NextBits() >> 11) * (1.0 / (1UL << 53));
        var u2 = (NextBits() >> 11) * (1.0 / (1UL << 53));
        var radius = Math.Sqrt(-2 * Math.Log(1 - u1)); // 1 - u1 is in (0, 1]
        _spare = radius * Math.Sin(2 * Math.PI * u2);
        return radius * Math.Cos(2 * Math.PI * u2);
    }

    private ulong NextBits()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
