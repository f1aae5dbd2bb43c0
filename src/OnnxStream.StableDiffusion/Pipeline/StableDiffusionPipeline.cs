using System.Diagnostics;
using Microsoft.Extensions.Options;
using OnnxStream.StableDiffusion.Decoding;
using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.StableDiffusion.Models;

namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>
/// Text to image with Stable Diffusion 1.5, SDXL or SDXL Turbo: text encoder(s), then the UNet for each
/// denoising step (with classifier-free guidance), then the VAE decoder, whole or tiled. One model is open
/// at a time, so memory is the largest model's working set.
/// </summary>
public sealed class StableDiffusionPipeline
{
    private readonly StableDiffusionOptions _options;
    private readonly IInferenceBackend _backend;
    private readonly Func<string, ITextTokenizer> _tokenizer;
    private readonly Func<string, IDiffusionSampler> _sampler;

    /// <summary>A pipeline over the models of <see cref="StableDiffusionOptions.ModelsPath"/>.</summary>
    /// <param name="options">What to make and how.</param>
    /// <param name="backend">Runs the models (default: OnnxStream with the options' memory profile and threads).</param>
    /// <param name="tokenizer">Makes the tokenizer of a tokenizer folder (default: <see cref="InterimClipTokenizer"/>).</param>
    /// <param name="sampler">Makes a sampler by name for each image (default: Euler ancestral, <see cref="InterimEulerAncestralSampler"/>).</param>
    /// <exception cref="FileNotFoundException">A model is missing from the folder; the message names the path expected.</exception>
    public StableDiffusionPipeline(StableDiffusionOptions options, IInferenceBackend? backend = null,
        Func<string, ITextTokenizer>? tokenizer = null, Func<string, IDiffusionSampler>? sampler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        Validate(options);
        _backend = backend ?? OnnxStreamBackend.ForProfile(options.MemoryProfile, options.Threads);
        _tokenizer = tokenizer ?? (folder => new InterimClipTokenizer(folder));
        _sampler = sampler ?? DefaultSampler;
        Folder = StableDiffusionModelFolder.Open(options.ModelsPath, options.Model, options.Layout);
        foreach (var side in new[] { options.Width, options.Height })
            if (side is { } pixels && (pixels % 8 != 0 || pixels < 8))
                throw new ArgumentException($"The image size {options.Width}×{options.Height} must be a positive multiple of 8 on both sides.");
    }

    /// <summary>A pipeline bound from <see cref="IOptions{TOptions}"/>.</summary>
    public StableDiffusionPipeline(IOptions<StableDiffusionOptions> options) : this(options.Value)
    {
    }

    /// <summary>The models in use.</summary>
    public StableDiffusionModelFolder Folder { get; }

    /// <summary>The guidance scale in use: the option's, else 7 (0 for Turbo).</summary>
    public float GuidanceScale => _options.GuidanceScale ?? (Folder.Kind == ModelKind.StableDiffusionXLTurbo ? 0 : 7);

    /// <summary>Whether the latent is decoded in tiles.</summary>
    public bool TiledDecoding => _options.DecoderTiling switch
    {
        DecoderTiling.Tiled => true,
        DecoderTiling.Whole => false,
        _ => Folder.IsXL || _options.MemoryProfile == MemoryProfile.LowMemory,
    };

    /// <summary>Makes <see cref="StableDiffusionOptions.ImageCount"/> images.</summary>
    public Task<IReadOnlyList<GeneratedImage>> GenerateAsync(IProgress<PipelineProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Generate(progress, cancellationToken), cancellationToken);

    /// <summary>Decodes a (1, 4, H/8, W/8) latent (e.g. one saved with a generation).</summary>
    public Task<RgbImage> DecodeAsync(float[] latent, int[] shape, IProgress<PipelineProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() =>
        {
            if (shape is not [1, 4, var h, var w]) throw new ArgumentException($"A latent is (1, 4, H/8, W/8), not [{string.Join(',', shape)}].", nameof(shape));
            return Decode(latent, h, w, 0, 1, Stopwatch.StartNew(), progress, cancellationToken);
        }, cancellationToken);

    private IReadOnlyList<GeneratedImage> Generate(IProgress<PipelineProgress>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var images = _options.ImageCount;
        progress?.Report(new PipelineProgress(PipelineStage.EncodingText, 0, images, 0, 1, clock.Elapsed, 0));
        var guided = GuidanceScale is not (0 or 1);
        var cond = EncodeText(_options.Prompt, cancellationToken);
        var uncond = guided ? EncodeText(_options.NegativePrompt, cancellationToken) : null;

        var schedule = new DiscreteNoiseSchedule();
        var sigmas = schedule.Sigmas(_options.Steps, _options.KarrasSigmas);
        Func<int, int, float[]>? timeIds = Folder.IsXL ? (height, width) => [height, width, 0, 0, height, width] : null;
        var latents = new List<(float[] Latent, long Seed)>();
        int latentHeight, latentWidth;
        using (var unet = new GuidedUNet(_backend, Folder.UNet, schedule, cond, uncond, GuidanceScale, _options.BatchGuidance,
                   _options.Height / 8, _options.Width / 8, Folder.NativeSize / 8, timeIds))
        {
            (latentHeight, latentWidth) = (unet.LatentShape[2], unet.LatentShape[3]);
            for (var image = 0; image < images; image++)
            {
                var seed = _options.Seed + image;
                var noise = new GaussianNoise(seed);
                var latent = new float[4 * latentHeight * latentWidth];
                noise.Fill(latent);
                for (var i = 0; i < latent.Length; i++) latent[i] *= sigmas[0];
                var sampler = _sampler(_options.Sampler);
                for (var step = 0; step < _options.Steps; step++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    sampler.Step(step, sigmas, latent, (x, sigma, denoised) => unet.Denoise(x, sigma, denoised, cancellationToken), noise);
                    progress?.Report(new PipelineProgress(PipelineStage.Denoising, image, images, step + 1, _options.Steps, clock.Elapsed, unet.LastPeakBytes));
                }
                latents.Add((latent, seed));
            }
        }
        var results = new List<GeneratedImage>();
        for (var image = 0; image < latents.Count; image++)
        {
            var (latent, seed) = latents[image];
            var rgb = Decode(latent, latentHeight, latentWidth, image, images, clock, progress, cancellationToken);
            results.Add(new GeneratedImage(rgb, latent, [1, 4, latentHeight, latentWidth], seed));
        }
        return results;
    }

    private RgbImage Decode(float[] latent, int latentHeight, int latentWidth, int image, int images, Stopwatch clock,
        IProgress<PipelineProgress>? progress, CancellationToken cancellationToken)
    {
        var tiled = TiledDecoding;
        var decoder = _options.MemoryProfile == MemoryProfile.LowMemory && Folder.VaeDecoderUInt8 is { } uint8 ? uint8
            : tiled && Folder.VaeTileDecoder is { } tile && _options.DecoderTileSize == 32 ? tile
            : Folder.VaeDecoder;
        var tileProgress = progress is null ? null : new SynchronousProgress<DecodingProgress>(p =>
            progress.Report(new PipelineProgress(PipelineStage.Decoding, image, images, p.Tile, p.Tiles, clock.Elapsed, 0)));
        return LatentDecoder.Decode(_backend, decoder, latent, latentHeight, latentWidth, Folder.LatentScale,
            tiled ? _options.DecoderTileSize : null, tileProgress, cancellationToken);
    }

    private TextConditioning EncodeText(string prompt, CancellationToken cancellationToken)
    {
        if (!Folder.IsXL)
        {
            using var encoder = _backend.Open(Folder.TextEncoder, ComponentRole.TextEncoder);
            var (hidden, width, _) = TextEncoding.Encode(encoder, _tokenizer(Folder.Tokenizer).Encode(prompt), "last_hidden_state", null, cancellationToken);
            return new TextConditioning(hidden, width, null);
        }
        float[] first, second, pooled;
        int firstWidth, secondWidth;
        using (var encoder = _backend.Open(Folder.TextEncoder, ComponentRole.TextEncoder))
            (first, firstWidth, _) = TextEncoding.Encode(encoder, _tokenizer(Folder.Tokenizer).Encode(prompt),
                TextEncoding.PenultimateOutput(encoder, Folder.TextEncoder), null, cancellationToken);
        using (var encoder = _backend.Open(Folder.TextEncoder2!, ComponentRole.TextEncoder))
        {
            var pooledName = encoder.Outputs.Contains("text_embeds") ? "text_embeds"
                : throw new ArgumentException($"{Folder.TextEncoder2}: the second text encoder has no text_embeds output (its outputs: {string.Join(", ", encoder.Outputs)}).");
            (second, secondWidth, var pooledValues) = TextEncoding.Encode(encoder, _tokenizer(Folder.Tokenizer2!).Encode(prompt),
                TextEncoding.PenultimateOutput(encoder, Folder.TextEncoder2!), pooledName, cancellationToken);
            pooled = pooledValues!;
        }
        // Per token: encoder 1's channels, then encoder 2's (77 × 2048 for SDXL).
        var tokens = first.Length / firstWidth;
        var joined = new float[tokens * (firstWidth + secondWidth)];
        for (var t = 0; t < tokens; t++)
        {
            first.AsSpan(t * firstWidth, firstWidth).CopyTo(joined.AsSpan(t * (firstWidth + secondWidth)));
            second.AsSpan(t * secondWidth, secondWidth).CopyTo(joined.AsSpan(t * (firstWidth + secondWidth) + firstWidth));
        }
        return new TextConditioning(joined, firstWidth + secondWidth, pooled);
    }

    private static IDiffusionSampler DefaultSampler(string name) => name.ToLowerInvariant() switch
    {
        "euler_a" or "euler_ancestral" or "euler a" => new InterimEulerAncestralSampler(),
        _ => throw new ArgumentException($"Unknown sampler '{name}' (this build has: euler_a)."),
    };

    private static void Validate(StableDiffusionOptions options)
    {
        if (string.IsNullOrEmpty(options.ModelsPath)) throw new ArgumentException("ModelsPath is required.");
        if (options.Steps < 1) throw new ArgumentException("Steps must be at least 1.");
        if (options.ImageCount < 1) throw new ArgumentException("ImageCount must be at least 1.");
        if (options.Threads < 1) throw new ArgumentException("Threads must be at least 1.");
        if (options.DecoderTileSize < 4) throw new ArgumentException("DecoderTileSize must be at least 4 latent pixels.");
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
