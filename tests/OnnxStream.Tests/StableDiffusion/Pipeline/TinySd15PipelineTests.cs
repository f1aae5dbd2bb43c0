using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary>The whole pipeline on ../shared/models/tiny-sd15 (random weights, 256×256), in both folder layouts.</summary>
[Category("Models")]
internal sealed class TinySd15PipelineTests
{
    internal static StableDiffusionOptions Options(ModelFolderLayout layout, int steps = 3) => new()
    {
        ModelsPath = SharedFixtures.Require("models/tiny-sd15"),
        Layout = layout,
        Prompt = "a photo of an astronaut riding a horse on mars",
        NegativePrompt = "blurry",
        Steps = steps,
        Seed = 42,
        Threads = 2,
    };

    [Test]
    public void The_interim_tokenizer_reproduces_the_reference_ids()
    {
        var reference = File.ReadAllBytes(SharedFixtures.Require("models/tiny-sd15/text_encoder/ref/input_ids.bin"));
        var expected = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(reference).ToArray().Select(i => (int)i);
        foreach (var folder in new[] { "tokenizer" })
        {
            var tokenizer = new InterimClipTokenizer(SharedFixtures.Require($"models/tiny-sd15/{folder}"));
            Assert.That(tokenizer.Encode("a photo of an astronaut riding a horse on mars").Ids, Is.EqualTo(expected));
        }
    }

    [TestCase(ModelFolderLayout.OnnxStream)]
    [TestCase(ModelFolderLayout.Diffusers)]
    public async Task Runs_end_to_end_and_gives_the_same_png_for_the_same_seed(ModelFolderLayout layout)
    {
        var options = Options(layout);
        var steps = new List<PipelineProgress>();
        var pipeline = new StableDiffusionPipeline(options);
        Assert.That(pipeline.Folder.Layout, Is.EqualTo(layout));
        Assert.That(pipeline.Folder.Kind, Is.EqualTo(ModelKind.StableDiffusion15));
        var first = await pipeline.GenerateAsync(new InlineProgress(steps.Add));
        var second = await new StableDiffusionPipeline(options).GenerateAsync();

        Assert.That(first, Has.Count.EqualTo(1));
        var image = first[0].Image;
        Assert.That((image.Width, image.Height), Is.EqualTo((256, 256)));
        Assert.That(first[0].LatentShape, Is.EqualTo(new[] { 1, 4, 32, 32 }));
        Assert.That(first[0].Latent.All(float.IsFinite));
        var distinct = image.Pixels.Distinct().Count();
        Assert.That(distinct, Is.GreaterThan(50), "an image, not a flat colour");
        Assert.That(PngFile.Encode(second[0].Image), Is.EqualTo(PngFile.Encode(image)), "same seed, same PNG bytes");
        Assert.That(steps.Where(s => s.Stage == PipelineStage.Denoising).Select(s => s.Step), Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(steps.Last().Stage, Is.EqualTo(PipelineStage.Decoding));

        options.Seed = 43;
        var other = await new StableDiffusionPipeline(options).GenerateAsync();
        Assert.That(other[0].Latent, Is.Not.EqualTo(first[0].Latent), "another seed, another image");
    }

    /// <summary>
    /// Both layouts hold the same float32 text encoder; the folder layout's UNet and VAE are float16 weights
    /// (<c>unet_fp16</c>, <c>vae_decoder_fp16</c>), so the latents agree within float16 weight rounding.
    /// </summary>
    [Test]
    public async Task Both_layouts_give_close_latents()
    {
        var folder = (await new StableDiffusionPipeline(Options(ModelFolderLayout.OnnxStream, 2)).GenerateAsync())[0];
        var onnx = (await new StableDiffusionPipeline(Options(ModelFolderLayout.Diffusers, 2)).GenerateAsync())[0];
        var (maxError, maxReference) = TinySd15Tests.Compare(folder.Latent, onnx.Latent);
        TestContext.Out.WriteLine($"layouts: max |latent difference| {maxError:G3} of max |latent| {maxReference:G3}");
        Assert.That(maxError, Is.LessThanOrEqualTo(2e-2 * maxReference));
    }

    [Test]
    public void A_missing_model_is_named()
    {
        var root = Directory.CreateTempSubdirectory("sd-missing-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "unet_fp16"));
            File.WriteAllText(Path.Combine(root, "unet_fp16", "model.txt"), "");
            var error = Assert.Throws<FileNotFoundException>(() => StableDiffusionModelFolder.Open(root));
            Assert.That(error!.Message, Does.Contain(Path.Combine(root, "text_encoder_fp32", "model.txt")));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Test]
    public void Cancellation_stops_the_run()
    {
        using var cancel = new CancellationTokenSource();
        var pipeline = new StableDiffusionPipeline(Options(ModelFolderLayout.Diffusers, 5));
        var run = pipeline.GenerateAsync(new InlineProgress(p => { if (p.Stage == PipelineStage.Denoising) cancel.Cancel(); }), cancel.Token);
        Assert.That(async () => await run, Throws.InstanceOf<OperationCanceledException>());
    }

    /// <summary>Reports on the calling thread, in order.</summary>
    internal sealed class InlineProgress(Action<PipelineProgress> report) : IProgress<PipelineProgress>
    {
        public void Report(PipelineProgress value) => report(value);
    }
}
