using OnnxStream.StableDiffusion.Pipeline;

namespace OnnxStream.StableDiffusion.Download;

/// <summary>
/// A Hugging Face model repository where the original OnnxStream publishes a model in its folder layout, and the
/// folders of it that its <c>sd</c> app downloads (those <see cref="Models.StableDiffusionModelFolder"/> opens; the
/// repositories hold others too).
/// </summary>
/// <param name="RepoId">The repository, <c>ORG/NAME</c>.</param>
/// <param name="Folders">The folders a generation needs.</param>
public sealed record PublishedModelRepository(string RepoId, IReadOnlyList<string> Folders)
{
    /// <summary>Stable Diffusion 1.5: https://huggingface.co/vitoplantamura/stable-diffusion-1.5-onnxstream.</summary>
    public static PublishedModelRepository StableDiffusion15 { get; } = new("vitoplantamura/stable-diffusion-1.5-onnxstream",
        ["tokenizer", "text_encoder_fp32", "unet_fp16", "vae_decoder_fp16", "vae_decoder_qu8"]);

    /// <summary>SDXL 1.0 base: https://huggingface.co/vitoplantamura/stable-diffusion-xl-base-1.0-onnxstream.</summary>
    public static PublishedModelRepository StableDiffusionXL { get; } = new("vitoplantamura/stable-diffusion-xl-base-1.0-onnxstream",
        ["sdxl_tokenizer", "sdxl_text_encoder_1_fp32", "sdxl_text_encoder_2_fp32", "sdxl_unet_fp16", "sdxl_vae_decoder_32x32_fp16", "sdxl_vae_decoder_fp16"]);

    /// <summary>
    /// SDXL Turbo: https://huggingface.co/vitoplantamura/stable-diffusion-xl-turbo-1.0-anyshape-onnxstream, the repository
    /// the original's sd app downloads today (UNet and VAE decoder exported for any resolution; the earlier fixed-shape
    /// export was AeroX2/stable-diffusion-xl-turbo-1.0-onnxstream).
    /// </summary>
    public static PublishedModelRepository StableDiffusionXLTurbo { get; } = new("vitoplantamura/stable-diffusion-xl-turbo-1.0-anyshape-onnxstream",
        ["sdxl_tokenizer", "sdxl_text_encoder_1_fp32", "sdxl_text_encoder_2_fp32", "sdxl_unet_anyshape_fp16", "sdxl_vae_decoder_anyshape_fp16"]);

    /// <summary>The repository of <paramref name="kind"/> (<see cref="ModelKind.Auto"/> is Stable Diffusion 1.5, as in the original app).</summary>
    public static PublishedModelRepository For(ModelKind kind) => kind switch
    {
        ModelKind.StableDiffusionXL => StableDiffusionXL,
        ModelKind.StableDiffusionXLTurbo => StableDiffusionXLTurbo,
        _ => StableDiffusion15,
    };

    /// <summary>
    /// The <see cref="Folders"/> as <see cref="HubDownloader.DownloadAsync"/> include patterns, without the convolution
    /// weights' <c>_nhwc.bin</c> copies: this engine reads the <c>_nchw.bin</c> files model.txt names (the original's
    /// app fetches the other copy instead), so each weight is downloaded once.
    /// </summary>
    public IReadOnlyList<string> IncludePatterns => [.. Folders.Select(folder => folder + "/"), "!*_nhwc.bin"];
}
