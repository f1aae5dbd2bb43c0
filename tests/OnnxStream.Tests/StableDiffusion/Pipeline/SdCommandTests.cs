using System.Buffers.Binary;
using System.Diagnostics;
using OnnxStream.Runtime;
using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.Tensors;
using OnnxStream.Tests.Models;
using OnnxStream.Tests.StableDiffusion.Decoding;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary><c>onnxstream sd</c> (the built CLI, run as a process) on tiny-sd15 in both layouts.</summary>
[Category("Models")]
internal sealed class SdCommandTests
{
    [Test]
    public void Writes_the_same_png_for_the_same_seed_in_both_layouts_with_parameters()
    {
        var models = SharedFixtures.Require("models/tiny-sd15");
        var folder = Directory.CreateTempSubdirectory("sd-cli-").FullName;
        try
        {
            string Run(string layout, string name)
            {
                var png = Path.Combine(folder, name);
                var output = RunCli("sd", "--models-path", models, "--layout", layout, "--steps", "1", "--seed", "3", "--threads", "2",
                    "--prompt", "a red fox", "--embed-parameters", "--output", png, "--save-latents", Path.ChangeExtension(png, ".npy"));
                Assert.That(output, Does.Contain("done in").And.Contain("peak RSS").And.Contain(png));
                return png;
            }
            var first = File.ReadAllBytes(Run("onnxstream", "a.png"));
            var again = File.ReadAllBytes(Run("onnxstream", "b.png"));
            var diffusers = File.ReadAllBytes(Run("diffusers", "c.png"));
            Assert.That(again, Is.EqualTo(first), "same seed, same PNG bytes");
            Assert.That(diffusers.AsSpan(0, 8).ToArray(), Is.EqualTo(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }));
            Assert.That(PngFile.ReadText(first)["parameters"], Does.StartWith("a red fox").And.Contain("Seed: 3"));
            Assert.That(File.Exists(Path.Combine(folder, "a.npy")));
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    /// <summary>
    /// One run with every generation option set to a non-default value: the settings line, the parameters written into each
    /// PNG, the files (images, latents, per-step previews and decodings), the memory report, the per-operation lines and the
    /// summary show that each option reached the run.
    /// </summary>
    [Test]
    public void Every_generation_option_reaches_the_run_and_each_step_writes_its_images()
    {
        var models = SharedFixtures.Require("models/tiny-sd15");
        var folder = Directory.CreateTempSubdirectory("sd-cli-options-").FullName;
        try
        {
            string In(string name) => Path.Combine(folder, name);
            var output = RunCli("sd", "--models-path", models, "--steps", "2", "--num", "2", "--seed", "5", "--sampler", "euler", "--karras", "--cfg", "5",
                "--prompt", "a red fox", "--neg-prompt", "rain", "--res", "256x256", "--threads", "1", "--not-tiled", "--embed-parameters",
                "--save-latents", In("fox.npy"), "--preview-steps", "--preview-steps-x8", "--decode-steps", "--memory-report", "--ops-printf",
                "--output", In("fox.png"));
            var lines = output.Split('\n');
            Assert.That(output, Does.Contain($"StableDiffusion15 (OnnxStream layout) in {models}: 256x256, 2 steps of euler (Karras), CFG 5, seed 5 to 6, " +
                                             "Default memory profile, whole decoding, 1 thread"));

            // --num 2: seeds 5 and 6, each with its parameters, latent and step files.
            foreach (var (image, name) in new[] { (0, "fox"), (1, "fox_1") })
            {
                var png = File.ReadAllBytes(In($"{name}.png"));
                Assert.That(Size(png), Is.EqualTo((256, 256)), name);
                Assert.That(PngFile.ReadText(png)["parameters"], Does.StartWith("a red fox\nNegative prompt: rain\nSteps: 2, Sampler: euler Karras, CFG scale: 5, " +
                                                                                 $"Seed: {5 + image}, Model: StableDiffusion15, Size: 256x256"));
                using (var latent = NpyFile.Read(In($"{name}.npy")))
                    Assert.That(latent.Shape, Is.EqualTo(new[] { 1, 4, 32, 32 }));
                Assert.That(Size(File.ReadAllBytes(In($"{name}_preview_1.png"))), Is.EqualTo((32, 32)), "--preview-steps: the latent's size");
                Assert.That(File.Exists(In($"{name}_preview_2.png")), name);
                Assert.That(Size(File.ReadAllBytes(In($"{name}_preview_x8_2.png"))), Is.EqualTo((256, 256)), "--preview-steps-x8: the image's size");
                Assert.That(Size(File.ReadAllBytes(In($"{name}_step_1.png"))), Is.EqualTo((256, 256)), "--decode-steps");
                Assert.That(File.Exists(In($"{name}_step_2.png")), Is.False, "the last step's decoding is the image itself");
            }
            using (var first = NpyFile.Read(In("fox.npy")))
            using (var second = NpyFile.Read(In("fox_1.npy")))
                Assert.That(second.Span<float>().ToArray(), Is.Not.EqualTo(first.Span<float>().ToArray()), "another seed, another latent");

            // --memory-report: each step's and each decoding's peak of tracked bytes.
            foreach (var report in new[] { "Denoising image 1 1/2", "Denoising image 1 2/2", "Denoising image 2 2/2", "Decoding image 2 1/1" })
                Assert.That(lines.Where(l => l.StartsWith(report + ": peak tracked ", StringComparison.Ordinal)).ToList(), Has.Count.EqualTo(1), report);
            Assert.That(lines.Single(l => l.StartsWith("Decoding image 1 1/1:", StringComparison.Ordinal)), Does.Not.Contain("peak tracked 0.0 MiB"));

            // --ops-printf: a line per operation of every model run, unwrapped.
            var operations = lines.Where(l => l.StartsWith('[')).ToList();
            Assert.That(operations, Has.Some.Matches(@"^\[text_encoder\] Gather \S+ [0-9.]+ ms, [0-9.]+ MiB held$"));
            Assert.That(operations, Has.Some.Matches(@"^\[unet\] Conv \S+ [0-9.]+ ms, [0-9.]+ MiB held$"));
            Assert.That(operations, Has.Some.Matches(@"^\[vae_decoder\] Conv \S+ [0-9.]+ ms, [0-9.]+ MiB held$"));
            Assert.That(operations.Count(l => l.StartsWith("[unet]", StringComparison.Ordinal)) % 8, Is.Zero, "2 images × 2 steps × 2 guidance passes");

            Assert.That(lines.Last(l => l.Length > 0), Does.Contain($"wrote {In("fox.png")}, {In("fox_1.png")} and 10 step images ({In("fox_preview_N.png")}, " +
                                                                    $"{In("fox_preview_x8_N.png")}, {In("fox_step_N.png")})"));
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    /// <summary>
    /// <c>--decoder-calibrate</c> with <c>--decode-latents</c> and a <c>--decoder-range-data</c> path (so that ../shared is not
    /// written): the uint8 decoder's ranges are written there, and the low-memory decoding that follows uses them.
    /// </summary>
    [Test]
    public void Decoder_calibration_writes_the_range_data_it_is_given()
    {
        var models = SharedFixtures.Require("models/tiny-sd15");
        var folder = Directory.CreateTempSubdirectory("sd-cli-calibrate-").FullName;
        try
        {
            var latent = Path.Combine(folder, "latent.npy");
            using (var tensor = Tensor.From<float>(DecoderCalibrationTests.ReferenceLatent(), [1, 4, 32, 32]))
                NpyFile.Write(latent, tensor);
            var ranges = Path.Combine(folder, "ranges.txt");
            var output = RunCli("sd", "--models-path", models, "--decode-latents", latent, "--decoder-calibrate", "--decoder-range-data", ranges,
                "--rpi-lowmem", "--memory-report", "--threads", "2", "--output", Path.Combine(folder, "decoded.png"));
            Assert.That(output, Does.Contain("decoding a saved latent, LowMemory memory profile, tiled decoding, 2 threads"));
            Assert.That(output, Does.Contain($"calibrated the VAE decoder: wrote {ranges}"));
            var calibrated = RangeData.Load(ranges);
            Assert.That(calibrated.Count, Is.GreaterThan(100));
            Assert.That(calibrated.TryGetRange("/decoder/conv_in/Conv", out var min, out var max) && min < max);
            Assert.That(Size(File.ReadAllBytes(Path.Combine(folder, "decoded.png"))), Is.EqualTo((256, 256)));
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    [Test]
    public void A_missing_models_folder_is_a_clear_error()
    {
        var output = RunCli("sd", "--models-path", "/nonexistent/models", "--steps", "1");
        Assert.That(output, Does.Contain("error: The models folder /nonexistent/models does not exist."));
        Assert.That(output, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public void A_bad_number_is_a_clear_error()
    {
        var output = RunCliExpectingFailure("sd", "--models-path", "/nonexistent/models", "--steps", "0");
        Assert.That(output, Does.Contain("--steps must be at least 1, not 0."));
        Assert.That(output, Does.Not.Contain("   at "), "no stack trace");
    }

    /// <summary>A PNG's width and height, from its IHDR chunk.</summary>
    private static (int Width, int Height) Size(byte[] png) =>
        (BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));

    [Test]
    public void An_unknown_sampler_is_a_clear_error_listing_the_samplers()
    {
        var output = RunCli("sd", "--models-path", "/nonexistent/models", "--sampler", "taylor3");
        Assert.That(output, Does.Contain("error: 'taylor3' is one of the original app's samplers that this build does not have; the samplers are euler, euler_a,"));
    }

    /// <summary>Runs the CLI built beside the tests (same configuration) and returns its output; fails on a non-zero exit unless it printed an error.</summary>
    internal static string RunCli(params string[] arguments) => RunCli(null, arguments);

    /// <summary>
    /// Runs the CLI built beside the tests (same configuration) with these environment variables set (null: removed) and
    /// returns its output; fails on a non-zero exit unless it printed an error.
    /// </summary>
    internal static string RunCli(IReadOnlyDictionary<string, string?>? environment, params string[] arguments) => RunCli(environment, arguments, expectFailure: false);

    /// <summary>Runs the CLI and returns its output; fails unless it exits with a non-zero status.</summary>
    private static string RunCliExpectingFailure(params string[] arguments) => RunCli(null, arguments, expectFailure: true);

    private static string RunCli(IReadOnlyDictionary<string, string?>? environment, string[] arguments, bool expectFailure)
    {
        var configuration = TestContext.CurrentContext.TestDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";
        var cli = Path.Combine(SharedFixtures.RepositoryRoot, "src", "OnnxStream.Cli", "bin", configuration, "net10.0", "OnnxStream.Cli.dll");
        if (!File.Exists(cli)) Assert.Ignore($"The CLI is not built at {cli}.");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(cli);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var output = stdout + stderr.Result;
        TestContext.Out.WriteLine(output.Split('\n').LastOrDefault(l => l.Length > 0));
        if (expectFailure) Assert.That(process.ExitCode, Is.Not.Zero, $"onnxstream {string.Join(' ', arguments)}:\n{output}");
        else if (process.ExitCode != 0 && !output.Contains("error:")) Assert.Fail($"onnxstream {string.Join(' ', arguments)} exited {process.ExitCode}:\n{output}");
        return output;
    }
}
