namespace OnnxStream.ModelBuilder;

/// <summary>The Stable Diffusion components the builder makes.</summary>
public enum StableDiffusionComponent
{
    /// <summary>SD 1.5 UNet (320/640/1280/1280, 2 layers per block, cross-attention 768, 8 heads): 859,520,964 parameters.</summary>
    Sd15Unet,

    /// <summary>SD 1.5 VAE decoder with post_quant_conv (128/256/512/512, mid attention).</summary>
    Sd15VaeDecoder,

    /// <summary>SD 1.5 text encoder: OpenAI CLIP ViT-L/14's text model (12 layers, 768, QuickGELU): 123,060,480 parameters.</summary>
    Sd15TextEncoder,

    /// <summary>SDXL UNet (320/640/1280, transformer depth 1/2/10, cross-attention 2048, text_time added embedding): 2,567,463,684 parameters.</summary>
    SdxlUnet,

    /// <summary>SDXL's first text encoder: CLIP-L with the penultimate hidden state as an output.</summary>
    SdxlTextEncoder,

    /// <summary>SDXL's second text encoder: OpenCLIP ViT-bigG/14's text model (32 layers, 1280, GELU) with the pooled projection.</summary>
    SdxlTextEncoder2,

    /// <summary>SDXL VAE decoder (the SD 1.5 architecture).</summary>
    SdxlVaeDecoder,
}

/// <summary>Full size (the published architectures) or tiny (a few hundred thousand parameters, for tests).</summary>
public enum ModelScale
{
    /// <summary>The published architecture.</summary>
    Full,

    /// <summary>The same graph structure at test size (the SD 1.5 ones are the configurations of ../shared/models/tiny-sd15).</summary>
    Tiny,
}

/// <summary>Makes Stable Diffusion graphs with <see cref="OnnxGraphBuilder"/>.</summary>
public static class StableDiffusionModels
{
    private static readonly (StableDiffusionComponent Component, string Name)[] Names =
    [
        (StableDiffusionComponent.Sd15Unet, "sd15-unet"),
        (StableDiffusionComponent.Sd15VaeDecoder, "sd15-vae-decoder"),
        (StableDiffusionComponent.Sd15TextEncoder, "sd15-text-encoder"),
        (StableDiffusionComponent.SdxlUnet, "sdxl-unet"),
        (StableDiffusionComponent.SdxlTextEncoder, "sdxl-text-encoder"),
        (StableDiffusionComponent.SdxlTextEncoder2, "sdxl-text-encoder-2"),
        (StableDiffusionComponent.SdxlVaeDecoder, "sdxl-vae-decoder"),
    ];

    /// <summary>The command-line names (sd15-unet, sdxl-text-encoder-2, ...).</summary>
    public static IReadOnlyList<string> ComponentNames { get; } = Names.Select(n => n.Name).ToArray();

    /// <summary>The component a command-line name stands for.</summary>
    /// <exception cref="ArgumentException">Not one of <see cref="ComponentNames"/>.</exception>
    public static StableDiffusionComponent ParseComponent(string name) =>
        Names.FirstOrDefault(n => n.Name == name) is { Name: not null } found
            ? found.Component
            : throw new ArgumentException($"Unknown architecture '{name}': expected one of {string.Join(", ", ComponentNames)}.", nameof(name));

    /// <summary>The command-line name of <paramref name="component"/>.</summary>
    public static string NameOf(StableDiffusionComponent component) => Names.First(n => n.Component == component).Name;

    /// <summary>The latent side the inputs are declared with by default: 64 (512 px) for SD 1.5, 128 (1024 px) for SDXL, 32 when tiny.</summary>
    public static int DefaultLatentSize(StableDiffusionComponent component, ModelScale scale) =>
        scale == ModelScale.Tiny ? 32 : component is StableDiffusionComponent.SdxlUnet or StableDiffusionComponent.SdxlVaeDecoder ? 128 : 64;

    /// <summary>
    /// The graph of <paramref name="component"/>: every float value <paramref name="floatType"/>; UNet and VAE
    /// inputs declared [1, 4, latentSize, latentSize] (the graph itself works at any size a multiple of 8).
    /// </summary>
    public static OnnxGraphBuilder Build(StableDiffusionComponent component, ModelScale scale, OnnxElementType floatType = OnnxElementType.Float, int? latentSize = null)
    {
        var g = new OnnxGraphBuilder(NameOf(component), floatType);
        var tiny = scale == ModelScale.Tiny;
        var latent = latentSize ?? DefaultLatentSize(component, scale);
        if (latent <= 0) throw new ArgumentOutOfRangeException(nameof(latentSize), latentSize, "The latent size must be positive.");
        var clipL = tiny ? new ClipTextConfig(1000, 32, 128, 2, 4, QuickGelu: true, ProjectionDim: 0, PenultimateOutput: false)
                         : new ClipTextConfig(49408, 768, 3072, 12, 12, QuickGelu: true, ProjectionDim: 0, PenultimateOutput: false);
        var vae = tiny ? new VaeDecoderConfig([16, 32, 32, 32], 1, 8) : new VaeDecoderConfig([128, 256, 512, 512], 2, 32);
        switch (component)
        {
            case StableDiffusionComponent.Sd15Unet:
                new UNetBuilder(g, tiny
                    ? new UNetConfig([32, 64], [true, false], 1, [1, 1], 1, [8, 8], 32, 8, LinearProjection: false, AddedEmbedding: null)
                    : new UNetConfig([320, 640, 1280, 1280], [true, true, true, false], 2, [1, 1, 1, 1], 1, [8, 8, 8, 8], 768, 32, LinearProjection: false, AddedEmbedding: null))
                    .Build(latent, 77);
                break;
            case StableDiffusionComponent.SdxlUnet:
                new UNetBuilder(g, tiny
                    ? new UNetConfig([32, 64], [false, true], 2, [1, 2], 2, [2, 4], 64, 8, LinearProjection: true, new AddedTimeEmbedding(32, 8))
                    : new UNetConfig([320, 640, 1280], [false, true, true], 2, [1, 2, 10], 10, [5, 10, 20], 2048, 32, LinearProjection: true, new AddedTimeEmbedding(1280, 256)))
                    .Build(latent, 77);
                break;
            case StableDiffusionComponent.Sd15VaeDecoder or StableDiffusionComponent.SdxlVaeDecoder:
                new VaeDecoderBuilder(g, vae).Build(latent);
                break;
            case StableDiffusionComponent.Sd15TextEncoder:
                new ClipTextBuilder(g, clipL).Build();
                break;
            case StableDiffusionComponent.SdxlTextEncoder:
                new ClipTextBuilder(g, clipL with { PenultimateOutput = true }).Build();
                break;
            case StableDiffusionComponent.SdxlTextEncoder2:
                new ClipTextBuilder(g, tiny
                    ? new ClipTextConfig(1000, 32, 128, 2, 4, QuickGelu: false, ProjectionDim: 32, PenultimateOutput: true)
                    : new ClipTextConfig(49408, 1280, 5120, 32, 20, QuickGelu: false, ProjectionDim: 1280, PenultimateOutput: true)).Build();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(component), component, null);
        }
        return g;
    }
}
