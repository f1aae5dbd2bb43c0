using OnnxStream.StableDiffusion.Sampling;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.StableDiffusion.Sampling;

/// <summary>
/// σ and timestep tables. Published values: SD 1.5's σ_min = 0.0291675 and σ_max = 14.6146 (k-diffusion's
/// CompVisDenoiser on the SD 1.5 checkpoint, as webui and ComfyUI print them, float32); diffusers' DDIM timesteps
/// for 10 leading steps with offset 1 (901 … 1) and LCM's 4-step schedule (999, 759, 499, 259). Other expected
/// tables are recomputed here from the definitions, in double precision, without the library.
/// </summary>
internal sealed class NoiseScheduleTests
{
    private static readonly NoiseSchedule Sd = new();

    /// <summary>σₜ from the definition: β linear in √β from 0.00085 to 0.012 over 1000 steps, ᾱ = ∏(1 − β).</summary>
    private static double[] DefinitionSigmas()
    {
        var sigmas = new double[1000];
        double alphaBar = 1;
        for (var t = 0; t < 1000; t++)
        {
            var sqrtBeta = Math.Sqrt(0.00085) + (Math.Sqrt(0.012) - Math.Sqrt(0.00085)) * t / 999;
            alphaBar *= 1 - sqrtBeta * sqrtBeta;
            sigmas[t] = Math.Sqrt((1 - alphaBar) / alphaBar);
        }
        return sigmas;
    }

    [Test]
    public void Sd15_training_sigmas_match_the_published_ends_and_the_definition()
    {
        Assert.That(Sd.SigmaMin, Is.EqualTo(0.0291675).Within(1e-6));
        Assert.That(Sd.SigmaMax, Is.EqualTo(14.6146).Within(1e-4));
        Assert.That(Sd.AlphasCumprod[0], Is.EqualTo(1 - 0.00085).Within(1e-15));
        Assert.That(Sd.TrainingSigmas, Is.EqualTo(DefinitionSigmas()).Within(1e-12));
    }

    [Test]
    public void KDiffusion_sigmas_interpolate_log_sigma_at_evenly_spaced_timesteps()
    {
        var reference = DefinitionSigmas();
        var sigmas = Sd.KDiffusionSigmas(10);

        Assert.That(sigmas, Has.Length.EqualTo(11));
        Assert.That(sigmas[0], Is.EqualTo(Sd.SigmaMax).Within(1e-12));
        Assert.That(sigmas[9], Is.EqualTo(Sd.SigmaMin).Within(1e-12));
        Assert.That(sigmas[10], Is.Zero);
        // 10 steps: t = 999 − 111·k, all training timesteps.
        for (var k = 0; k < 10; k++) Assert.That(sigmas[k], Is.EqualTo(reference[999 - 111 * k]).Within(1e-12));
        // 7 steps: t = 999 − 166.5·k, so t₁ = 832.5 lies halfway between two training timesteps in log σ.
        var seven = Sd.KDiffusionSigmas(7);
        var expected = Math.Exp(0.5 * Math.Log(reference[832]) + 0.5 * Math.Log(reference[833]));
        Assert.That(seven[1], Is.EqualTo(expected).Within(1e-12));
    }

    [Test]
    public void Karras_sigmas_follow_the_rho_7_formula()
    {
        var sigmas = Sd.KarrasSigmas(5);

        double maxRoot = Math.Pow(14.614641, 1 / 7.0), minRoot = Math.Pow(0.0291675, 1 / 7.0);
        Assert.That(sigmas, Has.Length.EqualTo(6));
        for (var k = 0; k < 5; k++)
            Assert.That(sigmas[k], Is.EqualTo(Math.Pow(maxRoot + k / 4.0 * (minRoot - maxRoot), 7)).Within(2e-5 * sigmas[k]));
        Assert.That(sigmas[5], Is.Zero);
        Assert.That(sigmas[0], Is.EqualTo(Sd.SigmaMax).Within(1e-12));
        Assert.That(sigmas[4], Is.EqualTo(Sd.SigmaMin).Within(1e-12));
    }

    [Test]
    public void Sigma_to_timestep_inverts_timestep_to_sigma()
    {
        foreach (var t in new[] { 0.0, 1.0, 17.25, 500.0, 998.5, 999.0 })
            Assert.That(Sd.SigmaToTimestep(Sd.TimestepToSigma(t)), Is.EqualTo(t).Within(1e-9));
        for (var t = 0; t < 1000; t += 37)
            Assert.That(Sd.SigmaToTimestep(Sd.TrainingSigmas[t]), Is.EqualTo(t), "a training σ gives its timestep exactly");
        Assert.That(Sd.SigmaToTimestep(1e-4), Is.Zero, "below σ_min clamps to 0");
        Assert.That(Sd.SigmaToTimestep(100), Is.EqualTo(999), "above σ_max clamps to 999");
    }

    [Test]
    public void Ddim_and_ddpm_timesteps_follow_diffusers_spacing()
    {
        Assert.That(Sd.SpacedTimesteps(10), Is.EqualTo(new[] { 901, 801, 701, 601, 501, 401, 301, 201, 101, 1 }));
        Assert.That(Sd.SpacedTimesteps(3), Is.EqualTo(new[] { 667, 334, 1 }));

        var trailing = new NoiseSchedule(new NoiseScheduleOptions { TimestepSpacing = TimestepSpacing.Trailing });
        Assert.That(trailing.SpacedTimesteps(10), Is.EqualTo(new[] { 999, 899, 799, 699, 599, 499, 399, 299, 199, 99 }));
        // round(1000 − k·62.5) − 1 with numpy's half-to-even: 937.5 → 938, 812.5 → 812.
        Assert.That(trailing.SpacedTimesteps(16)[..4], Is.EqualTo(new[] { 999, 937, 874, 811 }));

        var linspace = new NoiseSchedule(new NoiseScheduleOptions { TimestepSpacing = TimestepSpacing.Linspace });
        Assert.That(linspace.SpacedTimesteps(10), Is.EqualTo(new[] { 999, 888, 777, 666, 555, 444, 333, 222, 111, 0 }));

        Assert.Throws<ArgumentOutOfRangeException>(() => Sd.SpacedTimesteps(1000), "offset 1 would reach timestep 1000");
    }

    [Test]
    public void Lcm_and_tcd_timesteps_follow_diffusers()
    {
        Assert.That(Sd.ConsistencyTimesteps(4), Is.EqualTo(new[] { 999, 759, 499, 259 }));
        Assert.That(Sd.ConsistencyTimesteps(1), Is.EqualTo(new[] { 999 }));
        Assert.That(Sd.ConsistencyTimesteps(2), Is.EqualTo(new[] { 999, 499 }));
        Assert.That(Sd.ConsistencyTimesteps(50)[^1], Is.EqualTo(19));
        Assert.Throws<ArgumentOutOfRangeException>(() => Sd.ConsistencyTimesteps(51));
    }

    [Test]
    public void Reads_a_diffusers_scheduler_config()
    {
        var options = NoiseScheduleOptions.FromDiffusersConfig(SharedFixtures.Require("models/tiny-sd15/scheduler/scheduler_config.json"));

        Assert.That((options.BetaStart, options.BetaEnd, options.BetaSchedule, options.TrainTimesteps),
            Is.EqualTo((0.00085, 0.012, BetaSchedule.ScaledLinear, 1000)));
        Assert.That((options.PredictionType, options.TimestepSpacing, options.StepsOffset),
            Is.EqualTo((PredictionType.Epsilon, TimestepSpacing.Leading, 1)));
    }

    [Test]
    public void Refuses_scheduler_configs_it_cannot_follow()
    {
        var path = Path.Combine(Path.GetTempPath(), $"scheduler-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, """{ "prediction_type": "sample" }""");
            var error = Assert.Throws<InvalidDataException>(() => NoiseScheduleOptions.FromDiffusersConfig(path));
            Assert.That(error!.Message, Does.Contain(path).And.Contain("prediction_type"));

            File.WriteAllText(path, """{ "beta_start": "small" }""");
            Assert.That(Assert.Throws<InvalidDataException>(() => NoiseScheduleOptions.FromDiffusersConfig(path))!.Message, Does.Contain(path));
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void Model_output_becomes_the_x0_prediction()
    {
        float[] x = [2f, -1f];
        float[] output = [0.5f, 0.25f];
        var denoised = new float[2];

        Sd.ToDenoised(x, output, 2.0, denoised);
        Assert.That(denoised, Is.EqualTo(new[] { 2 - 2 * 0.5f, -1 - 2 * 0.25f }).Within(1e-6));

        // v-prediction: x₀ = x/(σ²+1) − σ/√(σ²+1)·v (k-diffusion VDenoiser with σ_data = 1).
        var v = new NoiseSchedule(new NoiseScheduleOptions { PredictionType = PredictionType.VPrediction });
        v.ToDenoised(x, output, 2.0, denoised);
        Assert.That(denoised, Is.EqualTo(new[] { 2 / 5.0 - 2 / Math.Sqrt(5) * 0.5, -1 / 5.0 - 2 / Math.Sqrt(5) * 0.25 }).Within(1e-6));
        Assert.That(NoiseSchedule.InputScale(2.0), Is.EqualTo(1 / Math.Sqrt(5)).Within(1e-15));
    }
}
