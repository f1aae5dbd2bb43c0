using OnnxStream.StableDiffusion.Sampling;

namespace OnnxStream.Tests.StableDiffusion.Sampling;

/// <summary>
/// The seeded noise stream against an independent Python implementation of its documented algorithm (SplitMix64
/// seeding of xoshiro256**, both transcribed from Vigna's reference C code, Box–Muller with Python's math.log/cos/sin,
/// rounded to float32); the SplitMix64 part also reproduces the well-known first outputs for seed 0
/// (0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4).
/// </summary>
internal sealed class GaussianNoiseTests
{
    [TestCase(42L, new[] { -1.6132237911224365f, 1.5344873666763306f, 0.7816920280456543f, -0.4001934826374054f, 0.01587129384279251f, -0.12730993330478668f })]
    [TestCase(0L, new[] { -0.01410679705440998f, -1.0085865259170532f, -1.8458950519561768f, 1.0669282674789429f, 0.7881791591644287f, -0.0012458141427487135f })]
    [TestCase(-1L, new[] { 0.11775181442499161f, -1.0705862045288086f, -0.01725064218044281f, -1.164912462234497f, -0.12190288305282593f, -1.057895302772522f })]
    public void Matches_the_reference_stream(long seed, float[] expected)
    {
        var values = new float[expected.Length];
        new GaussianNoise(seed).Fill(values);
        Assert.That(values, Is.EqualTo(expected));
    }

    [Test]
    public void The_xoshiro_outputs_match_the_reference()
    {
        var noise = new GaussianNoise(0);
        Assert.That(new[] { noise.NextUInt64(), noise.NextUInt64(), noise.NextUInt64() },
            Is.EqualTo(new[] { 0x99ec5f36cb75f2b4UL, 0xbf6e1f784956452aUL, 0x1a5f849d4933e6e0UL }));
    }

    [Test]
    public void The_stream_does_not_depend_on_how_it_is_read()
    {
        var whole = new float[101];
        new GaussianNoise(7).Fill(whole);

        var pieces = new float[101];
        var noise = new GaussianNoise(7);
        noise.Fill(pieces.AsSpan(0, 3));
        noise.Fill(pieces.AsSpan(3, 0));
        noise.Fill(pieces.AsSpan(3, 1));
        noise.Fill(pieces.AsSpan(4, 96));
        noise.Fill(pieces.AsSpan(100, 1));

        Assert.That(pieces, Is.EqualTo(whole));
    }

    [Test]
    public void Is_standard_normal()
    {
        const int n = 200_000;
        var values = new float[n];
        new GaussianNoise(1234).Fill(values);

        var mean = values.Average(v => (double)v);
        var variance = values.Average(v => (v - mean) * (v - mean));
        var beyondTwo = values.Count(v => Math.Abs(v) > 2) / (double)n;
        // Standard errors: mean 1/√n ≈ 0.0022, variance √(2/n) ≈ 0.0032, P(|z| > 2) = 0.0455 ± 0.0005.
        Assert.That(mean, Is.EqualTo(0).Within(0.011));
        Assert.That(variance, Is.EqualTo(1).Within(0.016));
        Assert.That(beyondTwo, Is.EqualTo(0.0455).Within(0.0025));
    }

    [Test]
    public void Portable_log_and_sine_agree_with_the_platform_to_a_few_ulps()
    {
        for (var k = 1; k <= 4096; k++)
        {
            var u = k / 4096.0 - 0.5 / 4096;
            Assert.That(PortableMath.Log(u), Is.EqualTo(Math.Log(u)).Within(4e-16 * Math.Max(1, Math.Abs(Math.Log(u)))));
            var (sin, cos) = PortableMath.SinCosOfTurns(u);
            Assert.That(sin, Is.EqualTo(Math.Sin(2 * Math.PI * u)).Within(2e-15));
            Assert.That(cos, Is.EqualTo(Math.Cos(2 * Math.PI * u)).Within(2e-15));
        }
        Assert.That(PortableMath.Log(1.0 / (1UL << 53)), Is.EqualTo(-53 * Math.Log(2)).Within(1e-13));
    }
}
