namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// Seeded standard normal noise that is the same on every run, machine and operating system (System.Random's
/// algorithm is unspecified and has changed between .NET versions, so it is not used):
/// <list type="number">
/// <item>the 64-bit seed is expanded into the 256-bit state of xoshiro256** by four SplitMix64 outputs
/// (both by Blackman and Vigna, https://prng.di.unimi.it/, reference C code xoshiro256starstar.c and splitmix64.c);</item>
/// <item>each pair of normals takes two 64-bit outputs a, b: u₁ = ((a ≫ 11) + 1)·2⁻⁵³ ∈ (0, 1],
/// u₂ = (b ≫ 11)·2⁻⁵³ ∈ [0, 1); r = √(−2 ln u₁); the values are r·cos 2πu₂ then r·sin 2πu₂ (Box–Muller);</item>
/// <item>each is rounded to float32. The stream does not depend on how it is split into <see cref="Fill"/> calls.</item>
/// </list>
/// ln, sin and cos are evaluated with IEEE-754 double additions, multiplications and divisions only
/// (see <see cref="PortableMath"/>), never the platform's math library, whose last bits differ between C runtimes.
/// </summary>
public sealed class GaussianNoise : IGaussianNoise
{
    private ulong _s0, _s1, _s2, _s3;
    private float _spare;
    private bool _hasSpare;

    /// <summary>Starts the stream of <paramref name="seed"/>.</summary>
    public GaussianNoise(long seed)
    {
        var state = unchecked((ulong)seed);
        _s0 = SplitMix64(ref state);
        _s1 = SplitMix64(ref state);
        _s2 = SplitMix64(ref state);
        _s3 = SplitMix64(ref state);
    }

    /// <inheritdoc/>
    public void Fill(Span<float> destination)
    {
        var i = 0;
        if (_hasSpare && destination.Length > 0)
        {
            destination[i++] = _spare;
            _hasSpare = false;
        }
        while (i < destination.Length)
        {
            var (first, second) = NextPair();
            destination[i++] = first;
            if (i < destination.Length) destination[i++] = second;
            else (_spare, _hasSpare) = (second, true);
        }
    }

    /// <summary>The next 64-bit output of xoshiro256**.</summary>
    internal ulong NextUInt64()
    {
        var result = BitRotate(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitRotate(_s3, 45);
        return result;
    }

    private (float, float) NextPair()
    {
        const double unit = 1.0 / (1UL << 53);
        var u1 = ((NextUInt64() >> 11) + 1) * unit;
        var u2 = (NextUInt64() >> 11) * unit;
        var radius = Math.Sqrt(-2 * PortableMath.Log(u1)); // IEEE square root is exactly rounded everywhere
        var (sin, cos) = PortableMath.SinCosOfTurns(u2);
        return ((float)(radius * cos), (float)(radius * sin));
    }

    private static ulong SplitMix64(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong BitRotate(ulong x, int k) => (x << k) | (x >> (64 - k));
}
