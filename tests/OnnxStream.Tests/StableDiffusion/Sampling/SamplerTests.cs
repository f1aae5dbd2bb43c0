using OnnxStream.StableDiffusion.Sampling;

namespace OnnxStream.Tests.StableDiffusion.Sampling;

/// <summary>
/// Every sampler, step by step, against <see cref="SamplerReferences"/> (independent double-precision
/// reimplementations from k-diffusion's sampling.py and diffusers' schedulers), on a toy denoiser that depends on x
/// (non-linearly) and on σ, so a wrong evaluation point shows, with a fixed noise sequence.
/// </summary>
internal sealed class SamplerTests
{
    private static readonly double[] Start = [31.0, -24.0, 7.0, 52.0, -79.0, 13.0];
    private static readonly NoiseSchedule Sd = new();

    private static double Toy(double x, double sigma, int j) => 0.5 * x / (1 + 0.1 * sigma) + 0.3 * Math.Sin(x) + 0.01 * j;

    private static double[] ToyModel(double[] x, double sigma) => [.. x.Select((v, j) => Toy(v, sigma, j))];

    /// <summary>z_k = 1.3·sin(1.7k + 0.3) as float32, read in order.</summary>
    private sealed class FixedNoise : IGaussianNoise
    {
        private int _next;

        public void Fill(Span<float> destination)
        {
            for (var i = 0; i < destination.Length; i++) destination[i] = (float)(1.3 * Math.Sin(1.7 * _next++ + 0.3));
        }

        public double[] Next(int length)
        {
            var values = new float[length];
            Fill(values);
            return [.. values.Select(v => (double)v)];
        }
    }

    private static (List<double[]> Trajectory, int Calls) Run(Sampler sampler)
    {
        var x = Start.Select(v => (float)v).ToArray();
        var calls = 0;
        var trajectory = new List<double[]>();
        Denoiser denoiser = (xs, sigma, denoised) =>
        {
            calls++;
            for (var j = 0; j < xs.Length; j++) denoised[j] = (float)Toy(xs[j], sigma, j);
        };
        while (sampler.StepIndex < sampler.StepCount)
        {
            sampler.Step(x, denoiser);
            trajectory.Add([.. x.Select(v => (double)v)]);
        }
        return (trajectory, calls);
    }

    private static void AssertSameTrajectory(List<double[]> actual, List<double[]> expected)
    {
        Assert.That(actual, Has.Count.EqualTo(expected.Count));
        for (var step = 0; step < expected.Count; step++)
            for (var j = 0; j < Start.Length; j++)
                Assert.That(actual[step][j], Is.EqualTo(expected[step][j]).Within(2e-5 * (1 + Math.Abs(expected[step][j]))),
                    $"step {step}, element {j}");
    }

    private static readonly object[] KDiffusionCases =
    [
        new object[] { "euler", 1 }, new object[] { "euler_a", 1 }, new object[] { "heun", 2 }, new object[] { "dpm2", 2 },
        new object[] { "dpmpp_2m", 1 }, new object[] { "dpmpp_2s_a", 2 }, new object[] { "dpmpp_sde", 2 }, new object[] { "lms", 1 },
    ];

    [TestCaseSource(nameof(KDiffusionCases))]
    public void KDiffusion_samplers_match_the_reference(string name, int callsPerStep)
    {
        foreach (var karras in new[] { false, true })
        {
            const int steps = 6; // lms reaches order 4 and reuses its oldest slope buffer
            var sampler = Sampler.Create(new SamplerOptions { Name = name, Steps = steps, Karras = karras }, Sd, new FixedNoise());
            var sigmas = sampler.Sigmas.ToArray();
            var noise = new FixedNoise();
            Func<double[]> draw = () => noise.Next(Start.Length);

            var expected = name switch
            {
                "euler" => SamplerReferences.EulerAncestral(Start, sigmas, ToyModel, draw, eta: 0),
                "euler_a" => SamplerReferences.EulerAncestral(Start, sigmas, ToyModel, draw, eta: 1),
                "heun" => SamplerReferences.Heun(Start, sigmas, ToyModel),
                "dpm2" => SamplerReferences.Dpm2(Start, sigmas, ToyModel),
                "dpmpp_2m" => SamplerReferences.DpmPlusPlus2M(Start, sigmas, ToyModel),
                "dpmpp_2s_a" => SamplerReferences.DpmPlusPlus2SAncestral(Start, sigmas, ToyModel, draw, eta: 1),
                "dpmpp_sde" => SamplerReferences.DpmPlusPlusSde(Start, sigmas, ToyModel, draw, eta: 1),
                _ => SamplerReferences.Lms(Start, sigmas, ToyModel),
            };
            var (actual, calls) = Run(sampler);

            Assert.That(sigmas, Is.EqualTo(karras ? Sd.KarrasSigmas(steps) : Sd.KDiffusionSigmas(steps)));
            AssertSameTrajectory(actual, expected);
            // Second-order samplers call the model twice except on the last step (to σ = 0).
            Assert.That(calls, Is.EqualTo(callsPerStep * (steps - 1) + 1));
        }
    }

    [Test]
    public void Eta_scales_the_ancestral_noise()
    {
        var options = new SamplerOptions { Name = "euler_a", Steps = 4, Eta = 0.5 };
        var sampler = Sampler.Create(options, Sd, new FixedNoise());
        var noise = new FixedNoise();

        var expected = SamplerReferences.EulerAncestral(Start, sampler.Sigmas.ToArray(), ToyModel, () => noise.Next(Start.Length), eta: 0.5);
        AssertSameTrajectory(Run(sampler).Trajectory, expected);

        options.Name = "dpmpp_2s_a";
        sampler = Sampler.Create(options, Sd, new FixedNoise());
        noise = new FixedNoise();
        expected = SamplerReferences.DpmPlusPlus2SAncestral(Start, sampler.Sigmas.ToArray(), ToyModel, () => noise.Next(Start.Length), eta: 0.5);
        AssertSameTrajectory(Run(sampler).Trajectory, expected);
    }

    [TestCase(0.0)]
    [TestCase(0.6)]
    public void Ddim_matches_diffusers(double eta)
    {
        var sampler = Sampler.Create(new SamplerOptions { Name = "ddim", Steps = 4, Eta = eta }, Sd, new FixedNoise());
        var noise = new FixedNoise();
        var alphas = SamplerReferences.Alphas;

        // Leading spacing, ratio 250, offset 1; SD's set_alpha_to_one = false ends at ᾱ₀.
        var expected = SamplerReferences.Ddim(Start, [751, 501, 251, 1], ToyModel, () => noise.Next(Start.Length), eta, finalAlpha: alphas[0]);

        Assert.That(sampler.Sigmas[^1], Is.EqualTo(Math.Sqrt((1 - alphas[0]) / alphas[0])).Within(1e-12));
        AssertSameTrajectory(Run(sampler).Trajectory, expected);
    }

    [Test]
    public void Ddpm_matches_diffusers()
    {
        var sampler = Sampler.Create(new SamplerOptions { Name = "ddpm", Steps = 5 }, Sd, new FixedNoise());
        var noise = new FixedNoise();

        var expected = SamplerReferences.Ddpm(Start, [801, 601, 401, 201, 1], ToyModel, () => noise.Next(Start.Length));

        AssertSameTrajectory(Run(sampler).Trajectory, expected);
    }

    [TestCase(4)]
    [TestCase(1)]
    public void Lcm_matches_diffusers(int steps)
    {
        var sampler = Sampler.Create(new SamplerOptions { Name = "lcm", Steps = steps }, Sd, new FixedNoise());
        var noise = new FixedNoise();

        var expected = SamplerReferences.Lcm(Start, steps == 4 ? [999, 759, 499, 259] : [999], ToyModel, () => noise.Next(Start.Length));

        AssertSameTrajectory(Run(sampler).Trajectory, expected);
    }

    [TestCase(null)]
    [TestCase(0.0)]
    [TestCase(1.0)]
    public void Tcd_matches_diffusers(double? gamma)
    {
        var sampler = Sampler.Create(new SamplerOptions { Name = "tcd", Steps = 4, Eta = gamma }, Sd, new FixedNoise());
        var noise = new FixedNoise();

        var expected = SamplerReferences.Tcd(Start, [999, 759, 499, 259], ToyModel, () => noise.Next(Start.Length), gamma ?? 0.3);

        AssertSameTrajectory(Run(sampler).Trajectory, expected);
    }

    [Test]
    public void Linear_multistep_coefficients_equal_the_exact_integrals()
    {
        // Order 1 is the Euler step; higher orders integrate Lagrange polynomials over [σ_i, σ_{i+1}].
        double[] sigmas = [10, 6, 3, 1.5, 0.5, 0];
        Assert.That(SamplerReferences.LinearMultistepCoefficient(1, sigmas, 0, 0), Is.EqualTo(-4).Within(1e-12));
        // Order 2 at i = 1: ∫₆³ (τ − 10)/(6 − 10) dτ = [(τ − 10)²/−8]₆³ = (49 − 16)/−8 = −4.125.
        Assert.That(SamplerReferences.LinearMultistepCoefficient(2, sigmas, 1, 0), Is.EqualTo(-4.125).Within(1e-12));
    }

    [Test]
    public void The_same_seed_gives_the_same_latent_and_sample()
    {
        float[] Sample(long seed)
        {
            var sampler = Sampler.Create(new SamplerOptions { Name = "euler_a", Steps = 5, Seed = seed }, Sd);
            var latent = new float[64];
            sampler.InitializeLatent(latent);
            sampler.Run(latent, (x, sigma, denoised) =>
            {
                for (var j = 0; j < x.Length; j++) denoised[j] = (float)Toy(x[j], sigma, j);
            });
            return latent;
        }

        Assert.That(Sample(123), Is.EqualTo(Sample(123)));
        Assert.That(Sample(123), Is.Not.EqualTo(Sample(124)));
    }

    [Test]
    public void The_initial_latent_is_the_first_noise_times_sigma_max()
    {
        var sampler = Sampler.Create(new SamplerOptions { Steps = 3, Seed = 9 }, Sd);
        var latent = new float[10];
        sampler.InitializeLatent(latent);

        var noise = new float[10];
        new GaussianNoise(9).Fill(noise);
        Assert.That(latent, Is.EqualTo(noise.Select(z => z * Sd.SigmaMax)).Within(1e-5));
    }

    [Test]
    public void Every_name_builds_and_bad_options_are_refused()
    {
        Assert.That(Sampler.Names, Is.EquivalentTo(new[]
            { "euler", "euler_a", "heun", "dpm2", "dpmpp_2m", "dpmpp_2s_a", "dpmpp_sde", "lms", "ddim", "ddpm", "lcm", "tcd" }));
        foreach (var name in Sampler.Names)
        {
            var sampler = Sampler.Create(new SamplerOptions { Name = name, Steps = 4 }, Sd);
            Assert.That((sampler.Name, sampler.StepCount), Is.EqualTo((name, 4)));
        }
        Assert.That(Sampler.Create(new SamplerOptions { Name = " Euler_A " }, Sd).Name, Is.EqualTo("euler_a"));

        var unknown = Assert.Throws<ArgumentException>(() => Sampler.Create(new SamplerOptions { Name = "plms" }, Sd));
        Assert.That(unknown!.Message, Does.Contain("plms").And.Contain("dpmpp_2m"));
        Assert.Throws<ArgumentException>(() => Sampler.Create(new SamplerOptions { Name = "ddim", Karras = true }, Sd));
        Assert.Throws<ArgumentOutOfRangeException>(() => Sampler.Create(new SamplerOptions { Name = "tcd", Eta = 1.5 }, Sd));
        Assert.Throws<ArgumentOutOfRangeException>(() => Sampler.Create(new SamplerOptions { Steps = 0 }, Sd));
    }

    [Test]
    public void Steps_run_in_order_on_one_latent_size()
    {
        var sampler = Sampler.Create(new SamplerOptions { Name = "euler", Steps = 2 }, Sd);
        Denoiser half = (x, _, denoised) => { for (var j = 0; j < x.Length; j++) denoised[j] = 0.5f * x[j]; };
        var latent = new float[] { 1, 2, 3 };

        Assert.That(sampler.LastDenoised.Length, Is.Zero);
        sampler.Step(latent, half);
        Assert.That(sampler.LastDenoised.ToArray(), Is.EqualTo(new[] { 0.5f, 1f, 1.5f }));
        Assert.Throws<ArgumentException>(() => sampler.Step(new float[4], half));
        sampler.Step(latent, half);
        // The last Euler step goes to σ = 0: the latent is the denoiser's prediction.
        Assert.That(latent, Is.EqualTo(sampler.LastDenoised.ToArray()));
        Assert.Throws<InvalidOperationException>(() => sampler.Step(latent, half));
    }
}
