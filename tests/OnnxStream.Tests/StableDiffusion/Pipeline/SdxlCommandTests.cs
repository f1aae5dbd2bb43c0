using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary>
/// <c>onnxstream sd</c> (the built CLI, run as a process) on the builder's tiny SDXL and Turbo pipelines: each run writes
/// exactly the image and latent the library makes from the same options and seed.
/// </summary>
[Category("Models")]
internal sealed class SdxlCommandTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("sdxl-cli-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    /// <summary>SDXL with <c>--xl</c> and batched guidance (<c>--batch-cfg</c>): the library's unbatched run gives the same latent within 1e-4 and the same PNG.</summary>
    [TestCase("onnxstream", ModelFolderLayout.OnnxStream)]
    [TestCase("diffusers", ModelFolderLayout.Diffusers)]
    public async Task Sdxl_writes_the_library_image(string layoutName, ModelFolderLayout layout)
    {
        var png = Path.Combine(_folder, "xl.png");
        var output = SdCommandTests.RunCli("sd", "--xl", "--models-path", TinySdxlPipeline.Root, "--layout", layoutName, "--steps", "1", "--seed", "3",
            "--threads", "1", "--prompt", "a red fox", "--neg-prompt", "blurry", "--batch-cfg", "--embed-parameters", "--output", png,
            "--save-latents", Path.Combine(_folder, "xl.npy"));
        Assert.That(output, Does.Contain("done in").And.Contain(png));

        var options = TinySdxlPipelineTests.Options(layout, steps: 1);
        (options.Prompt, options.NegativePrompt, options.Seed) = ("a red fox", "blurry", 3);
        var expected = (await new StableDiffusionPipeline(options).GenerateAsync())[0];
        var written = File.ReadAllBytes(png);
        var parameters = PngFile.ReadText(written)["parameters"];
        Assert.That(parameters, Does.StartWith("a red fox").And.Contain("Steps: 1,").And.Contain("CFG scale: 7").And.Contain("Model: StableDiffusionXL,"));
        using var latent = NpyFile.Read(Path.Combine(_folder, "xl.npy"));
        Assert.That(latent.Shape, Is.EqualTo(new[] { 1, 4, 32, 32 }));
        var (maxError, maxReference) = Models.TinySd15Tests.Compare(latent.Span<float>(), expected.Latent);
        Assert.That(maxError, Is.LessThanOrEqualTo(1e-4 * maxReference), "batched (CLI) and two passes (library)");
        Assert.That(written, Is.EqualTo(PngFile.Encode(expected.Image, new Dictionary<string, string> { ["parameters"] = parameters })));
    }

    /// <summary>Turbo detected from the folder: one step, no guidance, <c>--res WxH</c>.</summary>
    [Test]
    public async Task Turbo_is_detected_and_takes_a_resolution()
    {
        var png = Path.Combine(_folder, "turbo.png");
        var output = SdCommandTests.RunCli("sd", "--models-path", TinySdxlPipeline.TurboRoot, "--res", "192x128", "--seed", "5", "--threads", "1",
            "--prompt", "a red fox", "--embed-parameters", "--output", png);
        Assert.That(output, Does.Contain("done in").And.Contain(png));

        var options = TinySdxlPipelineTests.Options(ModelFolderLayout.OnnxStream, steps: null, turbo: true);
        (options.Prompt, options.Seed, options.Width, options.Height) = ("a red fox", 5, 192, 128);
        var expected = (await new StableDiffusionPipeline(options).GenerateAsync())[0];
        var written = File.ReadAllBytes(png);
        var parameters = PngFile.ReadText(written)["parameters"];
        Assert.That(parameters, Does.Contain("Steps: 1,").And.Contain("CFG scale: 0").And.Contain("Model: StableDiffusionXLTurbo").And.Contain("Size: 192x128"));
        Assert.That(written, Is.EqualTo(PngFile.Encode(expected.Image, new Dictionary<string, string> { ["parameters"] = parameters })));
    }
}
