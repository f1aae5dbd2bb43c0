using OnnxStream.Conversion;
using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.StableDiffusion.Sampling;
using OnnxStream.Tensors;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary>
/// SDXL and SDXL Turbo end to end through the library on the builder's tiny SDXL pipeline (<see cref="TinySdxlPipeline"/>:
/// random weights, 256×256 from 32×32 latents), in both folder layouts; batched guidance and other resolutions on
/// shape-generic UNets (SDXL's and SD 1.5's).
/// </summary>
[Category("Models")]
internal sealed class TinySdxlPipelineTests
{
    internal static StableDiffusionOptions Options(ModelFolderLayout layout, int? steps = 2, bool turbo = false) => new()
    {
        ModelsPath = turbo ? TinySdxlPipeline.TurboRoot : TinySdxlPipeline.Root,
        Layout = layout,
        Prompt = "a photo of an astronaut riding a horse on mars",
        NegativePrompt = "blurry",
        Steps = steps,
        Seed = 42,
        Threads = 1,
    };

    /// <summary>
    /// One thread: the models are so small that a second thread gains nothing, and on a shared, oversubscribed machine each
    /// of their thousands of small parallel regions waits for both threads to be scheduled (measured: a whole tiny SDXL run
    /// 0.5 s of CPU on one thread, 8 s on two, at a load average of 25 on 2 cores).
    /// </summary>
    private static OnnxStreamBackend Engine => OnnxStreamBackend.ForProfile(MemoryProfile.Default, 1);

    [TestCase(ModelFolderLayout.OnnxStream)]
    [TestCase(ModelFolderLayout.Diffusers)]
    public async Task Runs_end_to_end_and_gives_the_same_png_for_the_same_seed(ModelFolderLayout layout)
    {
        var options = Options(layout);
        var progress = new List<PipelineProgress>();
        var recording = new RecordingBackend(Engine);
        var pipeline = new StableDiffusionPipeline(options, recording);
        Assert.That(pipeline.Folder.Layout, Is.EqualTo(layout));
        Assert.That(pipeline.Folder.Kind, Is.EqualTo(ModelKind.StableDiffusionXL));
        Assert.That(pipeline.GuidanceScale, Is.EqualTo(7));
        var first = await pipeline.GenerateAsync(new TinySd15PipelineTests.InlineProgress(progress.Add));
        var second = await new StableDiffusionPipeline(options).GenerateAsync();

        var image = first[0].Image;
        Assert.That((image.Width, image.Height), Is.EqualTo((256, 256)));
        Assert.That(first[0].LatentShape, Is.EqualTo(new[] { 1, 4, 32, 32 }));
        Assert.That(first[0].Latent.All(float.IsFinite));
        Assert.That(image.Pixels.Distinct().Count(), Is.GreaterThan(50), "an image, not a flat colour");
        Assert.That(PngFile.Encode(second[0].Image), Is.EqualTo(PngFile.Encode(image)), "same seed, same PNG bytes");
        Assert.That(progress.Where(p => p.Stage == PipelineStage.Denoising).Select(p => p.Step), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(progress.Last().Stage, Is.EqualTo(PipelineStage.Decoding));
        Assert.That(progress.Where(p => p.Stage == PipelineStage.Denoising).Select(p => p.PeakBytes), Has.All.GreaterThan(0));
        foreach (var role in Enum.GetValues<ComponentRole>())
        {
            var peak = recording.RunsOf(role).Max(r => r.PeakBytes);
            TestContext.Out.WriteLine($"{layout} {role}: peak tracked bytes {peak} ({peak / 1048576.0:F2} MiB)");
            Assert.That(peak, Is.GreaterThan(0));
        }

        options.Seed = 43;
        var other = await new StableDiffusionPipeline(options).GenerateAsync();
        Assert.That(other[0].Latent, Is.Not.EqualTo(first[0].Latent), "another seed, another image");
    }

    /// <summary>
    /// The layouts hold the same weights: the text encoders in float32 in both, the UNet and VAE decoders in float16 in the
    /// original's folders (<c>sdxl_unet_fp16</c>, <c>sdxl_vae_decoder_fp16</c>), so the latents agree within float16
    /// weight rounding (the bound of tiny-sd15's layouts, 2e-2 of max |latent|).
    /// </summary>
    [Test]
    public async Task Both_layouts_give_close_latents()
    {
        var folder = (await new StableDiffusionPipeline(Options(ModelFolderLayout.OnnxStream)).GenerateAsync())[0];
        var onnx = (await new StableDiffusionPipeline(Options(ModelFolderLayout.Diffusers)).GenerateAsync())[0];
        var (maxError, maxReference) = TinySd15Tests.Compare(folder.Latent, onnx.Latent);
        var pixels = folder.Image.Pixels.Zip(onnx.Image.Pixels, (a, b) => Math.Abs(a - b)).Average();
        TestContext.Out.WriteLine($"layouts: max |latent difference| {maxError:G3} of max |latent| {maxReference:G3} ({maxError / maxReference:G3}); mean |pixel difference| {pixels:F3}/255");
        Assert.That(maxError, Is.LessThanOrEqualTo(2e-2 * maxReference));
        Assert.That(maxError, Is.GreaterThan(0), "float16 weights on one side");
    }

    /// <summary>
    /// Turbo, detected from the folder's name: no guidance (no negative prompt encoded, one UNet pass per step), one step
    /// by default, at the timestep of the trailing spacing (999).
    /// </summary>
    [TestCase(ModelFolderLayout.OnnxStream)]
    [TestCase(ModelFolderLayout.Diffusers)]
    public async Task Turbo_runs_one_unguided_step_by_default(ModelFolderLayout layout)
    {
        var recording = new RecordingBackend(Engine);
        var pipeline = new StableDiffusionPipeline(Options(layout, steps: null, turbo: true), recording);
        Assert.That(pipeline.Folder.Kind, Is.EqualTo(ModelKind.StableDiffusionXLTurbo));
        Assert.That(pipeline.GuidanceScale, Is.EqualTo(0));
        Assert.That(pipeline.Steps, Is.EqualTo(1));
        var image = (await pipeline.GenerateAsync())[0];

        Assert.That(recording.RunsOf(ComponentRole.TextEncoder).Count(), Is.EqualTo(2), "each encoder once: no negative prompt");
        var unet = recording.RunsOf(ComponentRole.UNet).ToList();
        Assert.That(unet, Has.Count.EqualTo(1));
        Assert.That(unet[0].Inputs["sample"].Shape, Is.EqualTo(new[] { 1, 4, 32, 32 }));
        Assert.That(unet[0].Inputs["timestep"].Values, Is.EqualTo(new[] { 999f }));
        Assert.That(image.Image.Pixels.Distinct().Count(), Is.GreaterThan(50));
    }

    /// <summary>
    /// What the UNet gets: SDXL's time ids from the image's real height and width ([H, W, 0, 0, H, W], at 128×192 here,
    /// not the native 256 or the original app's fixed 1024), the second encoder's pooled projection as text_embeds and the
    /// joined hidden states, for each guidance pass; and the UNet's output depends on both (the added embedding is used).
    /// </summary>
    [TestCase(ModelFolderLayout.OnnxStream)]
    [TestCase(ModelFolderLayout.Diffusers)]
    public async Task Time_ids_and_pooled_embeddings_reach_the_unet(ModelFolderLayout layout)
    {
        var recording = new RecordingBackend(Engine);
        var options = Options(layout, steps: 1);
        options.Width = 192;
        options.Height = 128;
        var pipeline = new StableDiffusionPipeline(options, recording);
        var cond = pipeline.EncodeText(options.Prompt, CancellationToken.None);
        var uncond = pipeline.EncodeText(options.NegativePrompt, CancellationToken.None);
        Assert.That((cond.Width, cond.Pooled!.Length), Is.EqualTo((64, 32)), "32 + 32 channels per token; encoder 2's 32-wide projection");
        Assert.That(cond.Pooled, Is.Not.EqualTo(uncond.Pooled));
        // Encoder 1's ids are padded with the end token (999 in tiny-sd15's vocabulary), encoder 2's with "!" (0), as SDXL's tokenizers pad.
        var ids = recording.RunsOf(ComponentRole.TextEncoder).Take(2).Select(r => r.Inputs.Values.Single().Values).ToList();
        var end = Array.IndexOf(ids[0], 999f);
        Assert.That(end, Is.InRange(2, 70));
        Assert.That(ids[1].Take(end + 1), Is.EqualTo(ids[0].Take(end + 1)));
        Assert.That(ids[0].Skip(end + 1), Has.All.EqualTo(999f));
        Assert.That(ids[1].Skip(end + 1), Has.All.EqualTo(0f));
        recording.Runs.Clear();

        var image = (await pipeline.GenerateAsync())[0];
        Assert.That((image.Image.Width, image.Image.Height), Is.EqualTo((192, 128)));
        var unet = recording.RunsOf(ComponentRole.UNet).ToList();
        Assert.That(unet, Has.Count.EqualTo(2), "unconditional, then conditional");
        foreach (var (run, conditioning) in unet.Zip(new[] { uncond, cond }))
        {
            Assert.That(run.Inputs["sample"].Shape, Is.EqualTo(new[] { 1, 4, 16, 24 }));
            Assert.That(run.Inputs["time_ids"].Shape, Is.EqualTo(new[] { 1, 6 }));
            Assert.That(run.Inputs["time_ids"].Values, Is.EqualTo(new[] { 128f, 192, 0, 0, 128, 192 }));
            Assert.That(run.Inputs["text_embeds"].Values, Is.EqualTo(conditioning.Pooled));
            Assert.That(run.Inputs["encoder_hidden_states"].Shape, Is.EqualTo(new[] { 1, 77, 64 }));
            Assert.That(run.Inputs["encoder_hidden_states"].Values, Is.EqualTo(conditioning.Hidden));
        }

        // The same UNet inputs with other time ids, or the other prompt's pooled embedding, give another output.
        using var model = Engine.Open(pipeline.Folder.UNet, ComponentRole.UNet, unet[1].Inputs.ToDictionary(p => p.Key, p => p.Value.Shape));
        float[] Run(IReadOnlyDictionary<string, RecordedInput> inputs)
        {
            var tensors = inputs.ToDictionary(p => p.Key, p => Tensor.From<float>(p.Value.Values, p.Value.Shape, model.Allocator));
            try
            {
                using var outputs = model.Run(tensors, [model.Outputs[0]], CancellationToken.None);
                return outputs[model.Outputs[0]].Span<float>().ToArray();
            }
            finally
            {
                foreach (var tensor in tensors.Values) tensor.Dispose();
            }
        }
        var baseline = Run(unet[1].Inputs);
        var timeIds = new Dictionary<string, RecordedInput>(unet[1].Inputs) { ["time_ids"] = new([1, 6], [256, 256, 0, 0, 256, 256]) };
        var pooled = new Dictionary<string, RecordedInput>(unet[1].Inputs) { ["text_embeds"] = unet[0].Inputs["text_embeds"] };
        Assert.That(Run(unet[1].Inputs), Is.EqualTo(baseline), "deterministic");
        Assert.That(TinySd15Tests.Compare(Run(timeIds), baseline).MaxError, Is.GreaterThan(1e-3 * baseline.Max(MathF.Abs)), "time ids change the output");
        Assert.That(TinySd15Tests.Compare(Run(pooled), baseline).MaxError, Is.GreaterThan(1e-3 * baseline.Max(MathF.Abs)), "text_embeds change the output");
    }

    /// <summary>
    /// In the original's layout the penultimate hidden states are the intermediate tensors the original app asks for
    /// (<c>out_13</c>, <c>out_33</c>); a text encoder folder without them is named in the error, with the tensor.
    /// </summary>
    [Test]
    public void An_original_text_encoder_without_the_penultimate_tensor_is_named()
    {
        var root = Directory.CreateTempSubdirectory("sdxl-unnamed-").FullName;
        try
        {
            foreach (var folder in Directory.EnumerateDirectories(TinySdxlPipeline.Root, "sdxl_*"))
                if (Path.GetFileName(folder) != "sdxl_text_encoder_1_fp32")
                    Directory.CreateSymbolicLink(Path.Combine(root, Path.GetFileName(folder)), folder);
            var encoder = Path.Combine(root, "sdxl_text_encoder_1_fp32");
            ModelFolderWriter.Convert(Path.Combine(TinySdxlPipeline.Root, "text_encoder", "model.onnx"), encoder); // outputs not renamed
            var pipeline = new StableDiffusionPipeline(new StableDiffusionOptions { ModelsPath = root, Threads = 1 });
            Assert.That(pipeline.Folder.Kind, Is.EqualTo(ModelKind.StableDiffusionXL));
            Assert.That(() => pipeline.EncodeText("a red fox", CancellationToken.None),
                Throws.ArgumentException.With.Message.StartsWith(encoder + ": No tensor named 'out_13' exists in the model"));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    /// <summary>
    /// Batched guidance (one batch-2 UNet run per step, unconditional first) gives the latents of the two batch-1 passes
    /// within 1e-4 of max |latent|, on SDXL's UNet in both layouts and on an SD 1.5 one (shape-generic graphs loaded at
    /// batch 2 from their batch-1 declarations).
    /// </summary>
    [TestCase("sdxl", ModelFolderLayout.OnnxStream)]
    [TestCase("sdxl", ModelFolderLayout.Diffusers)]
    [TestCase("sd15", ModelFolderLayout.Diffusers)]
    public async Task Batched_guidance_equals_two_passes(string model, ModelFolderLayout layout)
    {
        var options = Options(layout);
        if (model == "sd15") options.ModelsPath = TinySdxlPipeline.Sd15Root;
        var separate = new RecordingBackend(Engine);
        var twoPasses = (await new StableDiffusionPipeline(options, separate).GenerateAsync())[0];
        options.BatchGuidance = true;
        var batched = new RecordingBackend(Engine);
        var onePass = (await new StableDiffusionPipeline(options, batched).GenerateAsync())[0];

        Assert.That(separate.RunsOf(ComponentRole.UNet).Select(r => r.Inputs["sample"].Shape[0]), Is.EqualTo(new[] { 1, 1, 1, 1 }));
        var runs = batched.RunsOf(ComponentRole.UNet).ToList();
        Assert.That(runs.Select(r => r.Inputs["sample"].Shape[0]), Is.EqualTo(new[] { 2, 2 }));
        var inputs = runs[0].Inputs;
        Assert.That(inputs["encoder_hidden_states"].Values, Is.EqualTo(separate.RunsOf(ComponentRole.UNet).Take(2).SelectMany(r => r.Inputs["encoder_hidden_states"].Values)));
        if (model == "sdxl")
        {
            Assert.That(inputs["time_ids"].Shape, Is.EqualTo(new[] { 2, 6 }));
            Assert.That(inputs["text_embeds"].Shape, Is.EqualTo(new[] { 2, 32 }));
        }
        var (maxError, maxReference) = TinySd15Tests.Compare(onePass.Latent, twoPasses.Latent);
        TestContext.Out.WriteLine($"{model} {layout}: batched vs two passes: max |latent difference| {maxError:G3} of max |latent| {maxReference:G3} ({maxError / maxReference:G3})");
        Assert.That(maxError, Is.LessThanOrEqualTo(1e-4 * maxReference));
    }

    /// <summary>
    /// A UNet export that bakes batch 1 into its Reshape constants (tiny-sd15's) cannot run batched guidance: the error
    /// says so and what to do, before any step runs.
    /// </summary>
    [Test]
    public void Batched_guidance_on_a_batch_1_export_is_a_clear_error()
    {
        var options = TinySd15PipelineTests.Options(ModelFolderLayout.Diffusers, steps: 1);
        options.BatchGuidance = true;
        Assert.That(async () => await new StableDiffusionPipeline(options).GenerateAsync(),
            Throws.InstanceOf<ArgumentException>().With.Message.Contains("BatchGuidance").And.Message.Contains("unet"));
    }

    /// <summary>
    /// Other sizes than the declared 32×32 latent, for every model kind: SDXL at 192×320 (a 24×40 latent, non-square; the
    /// tiled decoder's tiles cannot be the 32×32 tile decoder's, so tiles go through the any-size decoder), Turbo at 128×128
    /// and SD 1.5 (the shape-generic one) at 320×192, batched.
    /// </summary>
    [TestCase("sdxl", ModelFolderLayout.OnnxStream, 192, 320, false)]
    [TestCase("sdxl", ModelFolderLayout.Diffusers, 192, 320, false)]
    [TestCase("turbo", ModelFolderLayout.OnnxStream, 128, 128, false)]
    [TestCase("sd15", ModelFolderLayout.Diffusers, 320, 192, true)]
    public async Task Other_resolutions_work(string model, ModelFolderLayout layout, int width, int height, bool batched)
    {
        var options = Options(layout, steps: 1, turbo: model == "turbo");
        if (model == "sd15") options.ModelsPath = TinySdxlPipeline.Sd15Root;
        (options.Width, options.Height, options.BatchGuidance) = (width, height, batched);
        var generated = (await new StableDiffusionPipeline(options).GenerateAsync())[0];
        Assert.That((generated.Image.Width, generated.Image.Height), Is.EqualTo((width, height)));
        Assert.That(generated.LatentShape, Is.EqualTo(new[] { 1, 4, height / 8, width / 8 }));
        Assert.That(generated.Latent.All(float.IsFinite));
        Assert.That(generated.Image.Pixels.Distinct().Count(), Is.GreaterThan(50));
    }

    /// <summary>
    /// SDXL's tiled decoding (the 32×32 tile decoder, tiles overlapping 8 latent pixels here: a 48×48 latent is 2×2 tiles at
    /// 0 and 16) against the whole decoder on the same latent. With random weights a pixel depends on the whole latent
    /// (mid-block attention), so tiles cannot match exactly; the bound is the SD 1.5 tiling test's, mean |difference| at
    /// most 10/255.
    /// </summary>
    [Test]
    public async Task Tiled_decoding_is_close_to_whole_decoding()
    {
        var latent = new float[4 * 48 * 48];
        new GaussianNoise(5).Fill(latent);
        for (var i = 0; i < latent.Length; i++) latent[i] *= 0.13025f; // the decoder sees unit variance
        var options = Options(ModelFolderLayout.OnnxStream);
        options.DecoderTiling = DecoderTiling.Tiled;
        var tiles = new List<PipelineProgress>();
        var tiled = await new StableDiffusionPipeline(options).DecodeAsync(latent, [1, 4, 48, 48], new TinySd15PipelineTests.InlineProgress(tiles.Add));
        options.DecoderTiling = DecoderTiling.Whole;
        var whole = await new StableDiffusionPipeline(options).DecodeAsync(latent, [1, 4, 48, 48]);
        Assert.That(tiles.Select(t => (t.Step, t.Steps)), Is.EqualTo(new[] { (1, 4), (2, 4), (3, 4), (4, 4) }));
        Assert.That((tiled.Width, tiled.Height), Is.EqualTo((384, 384)));
        var differences = tiled.Pixels.Zip(whole.Pixels, (a, b) => Math.Abs(a - b)).ToArray();
        TestContext.Out.WriteLine($"SDXL tiled vs whole: mean |difference| {differences.Average():F2}/255, max {differences.Max()}");
        Assert.That(whole.Pixels.Distinct().Count(), Is.GreaterThan(50));
        Assert.That(differences.Average(), Is.LessThanOrEqualTo(10));
    }

    /// <summary>The Hugging Face layout's float32 SDXL run by ONNX Runtime and by OnnxStream: the same latents within 1e-4 of their max |value|.</summary>
    [Test]
    public async Task OnnxRuntime_and_OnnxStream_give_the_same_latents()
    {
        var options = Options(ModelFolderLayout.Diffusers);
        var ort = (await new StableDiffusionPipeline(options, new OnnxRuntimeBackend()).GenerateAsync())[0];
        var engine = (await new StableDiffusionPipeline(options).GenerateAsync())[0];
        var (maxError, maxReference) = TinySd15Tests.Compare(engine.Latent, ort.Latent);
        TestContext.Out.WriteLine($"SDXL, OnnxStream vs ONNX Runtime: max |latent difference| {maxError:G3} of max |latent| {maxReference:G3} ({maxError / maxReference:G3})");
        Assert.That(maxError, Is.LessThanOrEqualTo(1e-4 * maxReference));
    }
}
