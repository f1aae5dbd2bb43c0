using OnnxStream.Conversion;
using OnnxStream.ModelBuilder;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.StableDiffusion;

/// <summary>
/// A tiny SDXL pipeline made once per test run with the model builder (seeded random weights, 256×256 images from
/// 32×32 latents), in both folder layouts side by side, as tiny-sd15 in ../shared holds both:
/// <list type="bullet">
/// <item>Hugging Face optimum/diffusers: <c>text_encoder/</c>, <c>text_encoder_2/</c>, <c>unet/</c>, <c>vae_decoder/</c>
/// (float32 <c>model.onnx</c>), <c>tokenizer/</c> and <c>tokenizer_2/</c> (vocab.json, merges.txt; the second pads
/// with <c>!</c> per its special_tokens_map.json), <c>scheduler/scheduler_config.json</c>, <c>model_index.json</c>.</item>
/// <item>The original's, written by the converter as the original's folders are: <c>sdxl_text_encoder_1_fp32/</c> and
/// <c>sdxl_text_encoder_2_fp32/</c> with the original's output names (<c>out_0</c> the pooled projection, <c>out_13</c>
/// and <c>out_33</c> the penultimate hidden states, which the original app asks for as extra outputs), <c>sdxl_unet_fp16/</c>
/// and <c>sdxl_vae_decoder_fp16/</c> (float16 weights, unfolded so any size and batch load as the original's any-shape
/// UNet does), <c>sdxl_vae_decoder_32x32_fp16/</c> (the tile decoder, folded at 32×32: static shapes), <c>sdxl_tokenizer/</c>
/// (vocab.txt, merges.txt).</item>
/// </list>
/// The graphs are shape-generic (Shape-based reshapes, as a dynamic-axes export) and declare batch 1 and 32×32.
/// The tokenizer is tiny-sd15's synthetic one (1000 tokens, the text encoders' vocabulary). <see cref="TurboRoot"/>
/// is a folder named for Turbo (so it is detected as Turbo) linking to the same models, with Turbo's scheduler
/// (trailing spacing). <see cref="Sd15Root"/> is an SD 1.5 pipeline (Hugging Face layout) with the builder's shape-generic
/// UNet and VAE decoder and tiny-sd15's text encoder, tokenizer and scheduler (tiny-sd15's own UNet and VAE exports bake
/// batch 1 and 32×32 into Reshape constants).
/// </summary>
internal static class TinySdxlPipeline
{
    /// <summary>The latent side the graphs declare (256-pixel images).</summary>
    public const int LatentSize = 32;

    private static readonly Lazy<string> Parent = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The SDXL base folder (both layouts); built on first use, skipped when ../shared's tokenizer is absent.</summary>
    public static string Root => Path.Combine(Built, "tiny-sdxl");

    /// <summary>The SDXL Turbo folder (both layouts; the same models, Turbo's scheduler).</summary>
    public static string TurboRoot => Path.Combine(Built, "tiny-sdxl-turbo");

    /// <summary>The shape-generic SD 1.5 folder (Hugging Face layout).</summary>
    public static string Sd15Root => Path.Combine(Built, "tiny-sd15-generic");

    private static string Built
    {
        get
        {
            SharedFixtures.Require("models/tiny-sd15/tokenizer");
            return Parent.Value;
        }
    }

    /// <summary>Deletes the folders if this run made them.</summary>
    public static void Delete()
    {
        if (Parent.IsValueCreated) Directory.Delete(Parent.Value, recursive: true);
    }

    private static string Build()
    {
        var parent = Directory.CreateTempSubdirectory("tiny-sdxl-").FullName;
        var root = Path.Combine(parent, "tiny-sdxl");
        var tokenizer = SharedFixtures.Require("models/tiny-sd15/tokenizer");

        // Hugging Face layout.
        var textEncoder = Write(root, "text_encoder", StableDiffusionComponent.SdxlTextEncoder, seed: 11);
        var textEncoder2 = Write(root, "text_encoder_2", StableDiffusionComponent.SdxlTextEncoder2, seed: 12);
        var unet = Write(root, "unet", StableDiffusionComponent.SdxlUnet, seed: 13);
        var vae = Write(root, "vae_decoder", StableDiffusionComponent.SdxlVaeDecoder, seed: 14);
        Copy(tokenizer, Path.Combine(root, "tokenizer"), "vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json");
        Copy(tokenizer, Path.Combine(root, "tokenizer_2"), "vocab.json", "merges.txt", "tokenizer_config.json");
        File.WriteAllText(Path.Combine(root, "tokenizer_2", "special_tokens_map.json"),
            """{ "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>" }""");
        File.WriteAllText(Path.Combine(root, "model_index.json"), """{ "_class_name": "StableDiffusionXLPipeline", "_random_weights": true }""");
        WriteScheduler(root, "leading");

        // The original's layout.
        Convert(textEncoder, root, "sdxl_text_encoder_1_fp32", float16: false, fold: true,
            ("last_hidden_state", "out_0"), ("pooler_output", "out_1"), ("hidden_states.1", "out_13"));
        Convert(textEncoder2, root, "sdxl_text_encoder_2_fp32", float16: false, fold: true,
            ("text_embeds", "out_0"), ("last_hidden_state", "out_1"), ("hidden_states.1", "out_33"));
        Convert(unet, root, "sdxl_unet_fp16", float16: true, fold: false);
        Convert(vae, root, "sdxl_vae_decoder_fp16", float16: true, fold: false);
        Convert(vae, root, "sdxl_vae_decoder_32x32_fp16", float16: true, fold: true);
        Copy(tokenizer, Path.Combine(root, "sdxl_tokenizer"), "vocab.txt", "merges.txt");

        // Turbo: the same models, linked.
        var turbo = Path.Combine(parent, "tiny-sdxl-turbo");
        Directory.CreateDirectory(turbo);
        foreach (var entry in Directory.EnumerateFileSystemEntries(root))
            if (Path.GetFileName(entry) != "scheduler")
            {
                var link = Path.Combine(turbo, Path.GetFileName(entry));
                if (Directory.Exists(entry)) Directory.CreateSymbolicLink(link, entry);
                else File.CreateSymbolicLink(link, entry);
            }
        WriteScheduler(turbo, "trailing");

        var sd15 = Path.Combine(parent, "tiny-sd15-generic");
        Directory.CreateDirectory(sd15);
        foreach (var shared in new[] { "text_encoder", "tokenizer", "scheduler" })
            Directory.CreateSymbolicLink(Path.Combine(sd15, shared), SharedFixtures.Require($"models/tiny-sd15/{shared}"));
        Write(sd15, "unet", StableDiffusionComponent.Sd15Unet, seed: 21);
        Write(sd15, "vae_decoder", StableDiffusionComponent.Sd15VaeDecoder, seed: 22);
        return parent;
    }

    private static string Write(string root, string folder, StableDiffusionComponent component, long seed) =>
        OnnxModelWriter.Write(StableDiffusionModels.Build(component, ModelScale.Tiny), Path.Combine(root, folder, "model.onnx"),
            new OnnxWriteOptions { Seed = seed }).ModelPath;

    private static void Convert(string onnx, string root, string folder, bool float16, bool fold, params (string From, string To)[] renames)
    {
        var options = new ModelConversionOptions { Float16 = float16, Fold = fold };
        foreach (var (from, to) in renames) options.Renames[from] = to;
        ModelFolderWriter.Convert(onnx, Path.Combine(root, folder), options);
    }

    private static void Copy(string from, string to, params string[] files)
    {
        Directory.CreateDirectory(to);
        foreach (var file in files) File.Copy(Path.Combine(from, file), Path.Combine(to, file));
    }

    /// <summary>SDXL's scheduler (Turbo's differs in its spacing).</summary>
    private static void WriteScheduler(string root, string spacing)
    {
        Directory.CreateDirectory(Path.Combine(root, "scheduler"));
        File.WriteAllText(Path.Combine(root, "scheduler", "scheduler_config.json"), $$"""
            {
              "_class_name": "EulerAncestralDiscreteScheduler",
              "beta_end": 0.012,
              "beta_schedule": "scaled_linear",
              "beta_start": 0.00085,
              "num_train_timesteps": 1000,
              "prediction_type": "epsilon",
              "steps_offset": 1,
              "timestep_spacing": "{{spacing}}"
            }
            """);
    }
}

/// <summary>Deletes the tiny SDXL pipeline after the Stable Diffusion tests.</summary>
[SetUpFixture]
internal sealed class TinySdxlPipelineCleanup
{
    [OneTimeTearDown]
    public void Delete() => TinySdxlPipeline.Delete();
}
