using System.Diagnostics;
using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.Tests.Models;

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

    [Test]
    public void A_missing_models_folder_is_a_clear_error()
    {
        var output = RunCli("sd", "--models-path", "/nonexistent/models", "--steps", "1");
        Assert.That(output, Does.Contain("error: The models folder /nonexistent/models does not exist."));
    }

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
    internal static string RunCli(IReadOnlyDictionary<string, string?>? environment, params string[] arguments)
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
        if (process.ExitCode != 0 && !output.Contains("error:")) Assert.Fail($"onnxstream {string.Join(' ', arguments)} exited {process.ExitCode}:\n{output}");
        return output;
    }
}
