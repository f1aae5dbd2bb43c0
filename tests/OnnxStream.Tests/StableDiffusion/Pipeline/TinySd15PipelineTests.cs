using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.StableDiffusion.Tokenization;
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

    /// <summary>
    /// Samplers of each kind (ancestral, deterministic, multistep, the diffusers-style DDIM and LCM, an original-app
    /// alias, Karras spacing) run end to end: finite latents, the same for the same seed, and each different from the
    /// others (a sampler that silently fell back to another would repeat its latent). Three steps: with two, Euler and
    /// DPM++ 2M are the same method (2M's second-order correction starts at the second step, and the last step to σ = 0
    /// gives the denoised latent in both).
    /// </summary>
    [Test]
    public async Task Several_samplers_run_end_to_end_deterministically()
    {
        var latents = new Dictionary<string, float[]>();
        foreach (var (sampler, karras) in new[] { ("euler_a", false), ("euler", false), ("dpmpp_2m", true), ("ddim", false), ("lcm", false), ("dpm++2s", false) })
        {
            var options = Options(ModelFolderLayout.Diffusers, steps: 3);
            options.Sampler = sampler;
            options.KarrasSigmas = karras;
            var progress = new List<PipelineProgress>();
            var first = (await new StableDiffusionPipeline(options).GenerateAsync(new InlineProgress(progress.Add)))[0].Latent;
            var again = (await new StableDiffusionPipeline(options).GenerateAsync())[0].Latent;
            var name = sampler + (karras ? " karras" : "");
            Assert.That(first.All(float.IsFinite), $"{name}: finite latent");
            Assert.That(again, Is.EqualTo(first), $"{name}: same seed, same latent");
            Assert.That(progress.Where(p => p.Stage == PipelineStage.Denoising).Select(p => (p.Step, p.Steps)), Is.EqualTo(new[] { (1, 3), (2, 3), (3, 3) }), name);
            foreach (var (other, latent) in latents)
                Assert.That(first.SequenceEqual(latent), Is.False, $"{name} and {other} give the same latent");
            latents[name] = first;
        }
    }

    [TestCase("nope", "is not a sampler")]
    [TestCase("ipndm", "is one of the original app's samplers that this build does not have")]
    public void An_unknown_sampler_is_refused_with_the_valid_names(string sampler, string reason)
    {
        var options = Options(ModelFolderLayout.Diffusers);
        options.Sampler = sampler;
        var error = Assert.Throws<ArgumentException>(() => _ = new StableDiffusionPipeline(options));
        Assert.That(error!.Message, Does.Contain($"'{sampler}' {reason}").And.Contain("euler, euler_a, heun, dpm2, dpmpp_2m").And.Contain("tcd_a"));
    }

    [Test]
    public void Karras_spacing_with_a_diffusers_scheduler_is_refused_before_any_model_runs()
    {
        var options = Options(ModelFolderLayout.Diffusers);
        options.Sampler = "ddim";
        options.KarrasSigmas = true;
        Assert.That(() => new StableDiffusionPipeline(options), Throws.ArgumentException.With.Message.Contains("Karras"));
    }

    /// <summary>
    /// Emphasis weights the text encoder's output (webui's rule, <see cref="PromptEmphasis.Apply"/>): "(astronaut:1.0)"
    /// is the plain prompt exactly; in "(astronaut:1.3)" the astronaut tokens' states are 1.3 times the others' scale
    /// and the overall mean is restored.
    /// </summary>
    [Test]
    public void Emphasis_weights_the_conditioning()
    {
        var pipeline = new StableDiffusionPipeline(Options(ModelFolderLayout.Diffusers));
        var plain = pipeline.EncodeText("a photo of an astronaut riding a horse", CancellationToken.None);
        var neutral = pipeline.EncodeText("a photo of an (astronaut:1.0) riding a horse", CancellationToken.None);
        var emphasized = pipeline.EncodeText("a photo of an (astronaut:1.3) riding a horse", CancellationToken.None);
        Assert.That(neutral.Hidden, Is.EqualTo(plain.Hidden));
        Assert.That(emphasized.Hidden, Is.Not.EqualTo(plain.Hidden));
        Assert.That(emphasized.Hidden.Average(), Is.EqualTo(plain.Hidden.Average()).Within(1e-4 * plain.Hidden.Select(Math.Abs).Average()));

        var weights = ClipTokenizer.FromFolder(Path.Combine(pipeline.Folder.Root, "tokenizer")).TokenizeWeighted("a photo of an (astronaut:1.3) riding a horse").Weights;
        Assert.That(weights.Count(w => w != 1f), Is.GreaterThan(0));
        var width = plain.Width;
        double Ratio(int token) => emphasized.Hidden.Skip(token * width).Take(width).Sum(v => (double)Math.Abs(v)) /
                                   plain.Hidden.Skip(token * width).Take(width).Sum(v => (double)Math.Abs(v));
        var restore = Ratio(0);
        for (var t = 0; t < weights.Length; t++)
            Assert.That(Ratio(t), Is.EqualTo(weights[t] * restore).Within(1e-4), $"token {t} (weight {weights[t]})");
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
