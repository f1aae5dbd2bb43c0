using System.Text.Json;
using OnnxStream.StableDiffusion.Pipeline;

namespace OnnxStream.StableDiffusion.Models;

/// <summary>How a models folder is laid out.</summary>
public enum ModelFolderLayout
{
    /// <summary>
    /// The original OnnxStream's published folders: <c>text_encoder_fp32/</c>, <c>unet_fp16/</c>, <c>vae_decoder_fp16/</c>,
    /// <c>vae_decoder_qu8/</c>, <c>tokenizer/vocab.txt</c> (SDXL: the same with an <c>sdxl_</c> prefix).
    /// </summary>
    OnnxStream,
    /// <summary>
    /// Hugging Face optimum/diffusers ONNX: <c>text_encoder[_2]/model.onnx</c>, <c>unet/model.onnx</c>,
    /// <c>vae_decoder/model.onnx</c>, <c>tokenizer[_2]/vocab.json</c> + <c>merges.txt</c>.
    /// </summary>
    Diffusers,
}

/// <summary>Where each model of a Stable Diffusion folder is, in either layout.</summary>
public sealed class StableDiffusionModelFolder
{
    private StableDiffusionModelFolder(string root, ModelFolderLayout layout, ModelKind kind)
    {
        Root = root;
        Layout = layout;
        Kind = kind;
    }

    /// <summary>The folder.</summary>
    public string Root { get; }

    /// <summary>Its layout.</summary>
    public ModelFolderLayout Layout { get; }

    /// <summary>The model it holds (never <see cref="ModelKind.Auto"/>).</summary>
    public ModelKind Kind { get; }

    /// <summary>Whether the model is SDXL or SDXL Turbo.</summary>
    public bool IsXL => Kind is ModelKind.StableDiffusionXL or ModelKind.StableDiffusionXLTurbo;

    /// <summary>The (first) text encoder.</summary>
    public string TextEncoder { get; private init; } = "";

    /// <summary>SDXL's second text encoder (OpenCLIP bigG with projection); null for SD 1.5.</summary>
    public string? TextEncoder2 { get; private init; }

    /// <summary>The UNet.</summary>
    public string UNet { get; private init; } = "";

    /// <summary>The VAE decoder for whole latents (or any tile size when its shapes are not static).</summary>
    public string VaeDecoder { get; private init; } = "";

    /// <summary>A decoder made for 32×32 latent tiles (SDXL's <c>sdxl_vae_decoder_32x32_fp16/</c>), when present.</summary>
    public string? VaeTileDecoder { get; private init; }

    /// <summary>The W8A8 decoder (<c>vae_decoder_qu8/</c> with its range_data.txt), when present.</summary>
    public string? VaeDecoderUInt8 { get; private init; }

    /// <summary>The tokenizer folder of the first text encoder (vocab.txt or vocab.json, and merges.txt).</summary>
    public string Tokenizer { get; private init; } = "";

    /// <summary>The tokenizer folder of the second text encoder (SDXL; the same files as the first in the original's layout).</summary>
    public string? Tokenizer2 { get; private init; }

    /// <summary>diffusers' <c>scheduler/scheduler_config.json</c> (the model's training noise schedule), when the folder has
    /// one; otherwise Stable Diffusion's defaults apply.</summary>
    public string? SchedulerConfig => File.Exists(Path.Combine(Root, "scheduler", "scheduler_config.json"))
        ? Path.Combine(Root, "scheduler", "scheduler_config.json")
        : null;

    /// <summary>The latent scaling factor of the VAE (0.18215 for SD 1.5, 0.13025 for SDXL).</summary>
    public float LatentScale => IsXL ? 0.13025f : 0.18215f;

    /// <summary>The resolution the model was trained for (used when neither the options nor the UNet's static shape say).</summary>
    public int NativeSize => Kind switch { ModelKind.StableDiffusionXL => 1024, _ => 512 };

    /// <summary>
    /// Finds the models of <paramref name="root"/>; <paramref name="kind"/> <see cref="ModelKind.Auto"/> decides from it
    /// (SDXL when it has a second text encoder; Turbo when the name of the folder or of a folder above it says so, as a
    /// hub cache's <c>models--ORG--NAME/snapshots/COMMIT</c> does, or model_index.json's <c>_name_or_path</c>). A null <paramref name="layout"/>
    /// is the original's when the folder has its UNet folder, else Hugging Face's when it has <c>unet/model.onnx</c>.
    /// </summary>
    /// <exception cref="FileNotFoundException">A model or tokenizer file is missing; the message names the path expected.</exception>
    public static StableDiffusionModelFolder Open(string root, ModelKind kind = ModelKind.Auto, ModelFolderLayout? layout = null)
    {
        root = Path.GetFullPath(root);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"The models folder {root} does not exist.");
        layout ??= !Directory.EnumerateDirectories(root, "*unet_fp*").Any() && File.Exists(Path.Combine(root, "unet", "model.onnx"))
            ? ModelFolderLayout.Diffusers
            : ModelFolderLayout.OnnxStream;
        if (kind == ModelKind.Auto) kind = Detect(root, layout.Value);
        var xl = kind is ModelKind.StableDiffusionXL or ModelKind.StableDiffusionXLTurbo;
        return layout == ModelFolderLayout.Diffusers ? OpenDiffusers(root, kind, xl) : OpenOnnxStream(root, kind, xl);
    }

    private static ModelKind Detect(string root, ModelFolderLayout layout)
    {
        var xl = layout == ModelFolderLayout.Diffusers
            ? Directory.Exists(Path.Combine(root, "text_encoder_2")) || IndexClassName(root).Contains("XL", StringComparison.Ordinal)
            : Directory.EnumerateDirectories(root, "sdxl_*").Any();
        if (!xl) return ModelKind.StableDiffusion15;
        var turbo = root.Split(Path.DirectorySeparatorChar).Append(IndexProperty(root, "_name_or_path"))
            .Any(name => name.Contains("turbo", StringComparison.OrdinalIgnoreCase));
        return turbo ? ModelKind.StableDiffusionXLTurbo : ModelKind.StableDiffusionXL;
    }

    private static string IndexClassName(string root) => IndexProperty(root, "_class_name");

    /// <summary>A string property of the folder's model_index.json, or "" without one.</summary>
    private static string IndexProperty(string root, string property)
    {
        var index = Path.Combine(root, "model_index.json");
        if (!File.Exists(index)) return "";
        using var json = JsonDocument.Parse(File.ReadAllText(index));
        return json.RootElement.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() ?? "" : "";
    }

    private static StableDiffusionModelFolder OpenDiffusers(string root, ModelKind kind, bool xl) => new(root, ModelFolderLayout.Diffusers, kind)
    {
        TextEncoder = RequireFile(root, "text encoder", "text_encoder/model.onnx"),
        TextEncoder2 = xl ? RequireFile(root, "second text encoder", "text_encoder_2/model.onnx") : null,
        UNet = RequireFile(root, "UNet", "unet/model.onnx"),
        VaeDecoder = RequireFile(root, "VAE decoder", "vae_decoder/model.onnx"),
        Tokenizer = RequireTokenizer(root, "tokenizer", "vocab.json"),
        Tokenizer2 = xl ? RequireTokenizer(root, Directory.Exists(Path.Combine(root, "tokenizer_2")) ? "tokenizer_2" : "tokenizer", "vocab.json") : null,
    };

    private static StableDiffusionModelFolder OpenOnnxStream(string root, ModelKind kind, bool xl)
    {
        if (xl)
        {
            var tile = Path.Combine(root, "sdxl_vae_decoder_32x32_fp16");
            return new StableDiffusionModelFolder(root, ModelFolderLayout.OnnxStream, kind)
            {
                TextEncoder = RequireFolder(root, "text encoder", "sdxl_text_encoder_1_fp32"),
                TextEncoder2 = RequireFolder(root, "second text encoder", "sdxl_text_encoder_2_fp32"),
                UNet = RequireFolder(root, "UNet", "sdxl_unet_fp16", "sdxl_unet_anyshape_fp16", "sdxl_unet_fp32"),
                VaeDecoder = RequireFolder(root, "VAE decoder", "sdxl_vae_decoder_fp16", "sdxl_vae_decoder_anyshape_fp16", "sdxl_vae_decoder_fp32"),
                VaeTileDecoder = File.Exists(Path.Combine(tile, "model.txt")) ? tile : null,
                Tokenizer = RequireTokenizer(root, "sdxl_tokenizer", "vocab.txt"),
                Tokenizer2 = RequireTokenizer(root, "sdxl_tokenizer", "vocab.txt"),
            };
        }
        var qu8 = Path.Combine(root, "vae_decoder_qu8");
        return new StableDiffusionModelFolder(root, ModelFolderLayout.OnnxStream, kind)
        {
            TextEncoder = RequireFolder(root, "text encoder", "text_encoder_fp32"),
            UNet = RequireFolder(root, "UNet", "unet_fp16", "unet_fp32"),
            VaeDecoder = RequireFolder(root, "VAE decoder", "vae_decoder_fp16", "vae_decoder_fp32"),
            VaeDecoderUInt8 = File.Exists(Path.Combine(qu8, "model.txt")) ? qu8 : null,
            Tokenizer = RequireTokenizer(root, "tokenizer", "vocab.txt"),
        };
    }

    private static string RequireFile(string root, string what, string relative)
    {
        var path = Path.Combine(root, relative);
        return File.Exists(path) ? path : throw new FileNotFoundException($"The {what} is missing: expected {path}.", path);
    }

    /// <summary>The first of <paramref name="candidates"/> holding a model.txt.</summary>
    private static string RequireFolder(string root, string what, params string[] candidates)
    {
        foreach (var candidate in candidates)
            if (File.Exists(Path.Combine(root, candidate, "model.txt"))) return Path.Combine(root, candidate);
        var expected = Path.Combine(root, candidates[0], "model.txt");
        throw new FileNotFoundException($"The {what} is missing: expected {expected}" +
                                        (candidates.Length > 1 ? $" (or {string.Join(", ", candidates.Skip(1))} in {root})." : "."), expected);
    }

    private static string RequireTokenizer(string root, string folder, string vocabulary)
    {
        var path = Path.Combine(root, folder);
        RequireFile(root, "tokenizer vocabulary", Path.Combine(folder, vocabulary));
        RequireFile(root, "tokenizer merges", Path.Combine(folder, "merges.txt"));
        return path;
    }
}
