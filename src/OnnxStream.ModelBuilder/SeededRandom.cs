namespace OnnxStream.ModelBuilder;

/// <summary>
/// SplitMix64: a fast, statistically sound generator with a 64-bit state. Each tensor gets its own
/// stream, seeded from the model seed and the tensor's name, so a tensor's values do not depend on the
/// order tensors are written in nor on the other tensors of the model.
/// </summary>
internal struct SeededRandom(ulong state)
{
    private ulong _state = state;

    /// <summary>A stream for <paramref name="name"/> under <paramref name="seed"/> (FNV-1a of the name, mixed with the seed).</summary>
    public static SeededRandom For(long seed, string name)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in name) hash = (hash ^ c) * 1099511628211UL;
        var mixer = new SeededRandom(hash ^ (ulong)seed);
        return new SeededRandom(mixer.NextUInt64());
    }

    public ulong NextUInt64()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Fills <paramref name="values"/> with center + halfWidth·u, u uniform in [-1, 1) (24 bits each, two per draw).</summary>
    public void Fill(Span<float> values, float center, float halfWidth)
    {
        const float unit = 1f / (1 << 23); // 24-bit integers to [0, 2)
        var i = 0;
        for (; i + 1 < values.Length; i += 2)
        {
            var bits = NextUInt64();
            values[i] = center + halfWidth * ((uint)(bits >> 40) * unit - 1);
            values[i + 1] = center + halfWidth * ((uint)(bits >> 8 & 0xFFFFFF) * unit - 1);
        }
        if (i < values.Length) values[i] = center + halfWidth * ((uint)(NextUInt64() >> 40) * unit - 1);
    }
}
