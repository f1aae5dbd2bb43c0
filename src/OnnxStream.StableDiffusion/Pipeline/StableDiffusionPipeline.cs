using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using OnnxStream.StableDiffusion.Decoding;
using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Sampling;
using OnnxStream.StableDiffusion.Tokenization;
using NonFiniteValueException = OnnxStream.Runtime.NonFiniteValueException;

namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>
/// Text to image with Stable Diffusion 1.5, SDXL or SDXL Turbo: text encoder(s), then the UNet for each
/// denoising step (with classifier-free guidance), then the VAE decoder, whole or tiled. One model is open
/// at a time, so memory is the largest model's working set.
/// </summary>
public sealed class StableDiffusionPipeline
{
    /// <summary>The original app's sampler names that are not this library's own, and the sampler and η each runs.</summary>
    private static readonly Dictionary<string, (string Sampler, double? Eta)> OriginalSamplerNames = new()
    {
        ["dpm++2m"] = ("dpmpp_2m", null),
        ["dpm++2s_a"] = ("dpmpp_2s_a", null),
        ["dpm++2s"] = ("dpmpp_2s_a", 0), // DPM++ 2S is the ancestral sampler without its noise
        ["ddim_a"] = ("ddim", 1),
        ["ddpm_a"] = ("ddpm", null),
        ["tcd_a"] = ("tcd", 1),
    };

    /// <summary>The original app's samplers this library does not have.</summary>
    private static readonly string[] MissingOriginalSamplers = ["dpm++2mv2", "dpm++3msde", "dpm++3msde_a", "ipndm", "ipndm_v", "ipndm_vo", "taylor3"];

    private readonly StableDiffusionOptions _options;
    private readonly IInferenceBackend _backend;
    private readonly NoiseSchedule _schedule;
    private readonly (string Name, double? Eta) _sampler;

    /// <summary>A pipeline over the models of <see cref="StableDiffusionOptions.ModelsPath"/>.</summary>
    /// <param name="options">What to make and how.</param>
    /// <param name="backend">Runs the models (default: OnnxStream with the options' memory profile and threads).</param>
    /// <exception cref="FileNotFoundException">A model is missing from the folder; the message names the path expected.</exception>
    /// <exception cref="ArgumentException">An option is invalid, e.g. an unknown sampler (the message lists the valid ones).</exception>
    public StableDiffusionPipeline(StableDiffusionOptions options, IInferenceBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        Validate(options);
        _sampler = ResolveSampler(options.Sampler);
        _backend = backend ?? OnnxStreamBackend.For(options);
        Folder = StableDiffusionModelFolder.Open(options.ModelsPath, options.Model, options.Layout);
        if (options.CalibrateDecoder && DecoderRangeDataPath is null)
            throw new ArgumentException($"Calibrating the uint8 VAE decoder needs its folder (vae_decoder_qu8/ in {Folder.Root}) or a range_data.txt path to write (DecoderRangeDataPath).");
        foreach (var side in new[] { options.Width, options.Height })
            if (side is { } pixels && (pixels % 8 != 0 || pixels < 8))
                throw new ArgumentException($"The image size {options.Width}×{options.Height} must be a positive multiple of 8 on both sides.");
        _schedule = new NoiseSchedule(Folder.SchedulerConfig is { } config ? NoiseScheduleOptions.FromDiffusersConfig(config) : null);
        CreateSampler(options.Seed); // refuses what the sampler cannot do (Karras for ddim, too many lcm steps) before any model runs
    }

    /// <summary>
    /// The sampler names <see cref="StableDiffusionOptions.Sampler"/> takes: this library's (<see cref="Sampler.Names"/>)
    /// and the original app's that map onto them (dpm++2m, dpm++2s, dpm++2s_a, ddim_a, ddpm_a, tcd_a).
    /// </summary>
    public static IReadOnlyList<string> SamplerNames { get; } = [.. Sampler.Names, .. OriginalSamplerNames.Keys];

    /// <summary>A pipeline bound from <see cref="IOptions{TOptions}"/>.</summary>
    public StableDiffusionPipeline(IOptions<StableDiffusionOptions> options) : this(options.Value)
    {
    }

    /// <summary>The models in use.</summary>
    public StableDiffusionModelFolder Folder { get; }

    /// <summary>The guidance scale in use: the option's, else 7 (0 for Turbo).</summary>
    public float GuidanceScale => _options.GuidanceScale ?? (Folder.Kind == ModelKind.StableDiffusionXLTurbo ? 0 : 7);

    /// <summary>The denoising steps in use: the option's, else 10 (1 for Turbo).</summary>
    public int Steps => _options.Steps ?? (Folder.Kind == ModelKind.StableDiffusionXLTurbo ? 1 : 10);

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

    /// <summary>The range_data.txt of the uint8 VAE decoder (<see cref="StableDiffusionOptions.DecoderRangeDataPath"/>, else its folder's), null without either.</summary>
    public string? DecoderRangeDataPath => _options.DecoderRangeDataPath ?? (Folder.VaeDecoderUInt8 is { } uint8 ? Path.Combine(uint8, "range_data.txt") : null);

    /// <summary>Decodes a (1, 4, H/8, W/8) latent (e.g. one saved with a generation), after calibrating the decoder on it when <see cref="StableDiffusionOptions.CalibrateDecoder"/> says so.</summary>
    public Task<RgbImage> DecodeAsync(float[] latent, int[] shape, IProgress<PipelineProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() =>
        {
            var (h, w) = LatentSize(shape);
            if (_options.CalibrateDecoder) CalibrateDecoder([latent], h, w, cancellationToken);
            return Decode(latent, h, w, 0, 1, Stopwatch.StartNew(), progress, cancellationToken);
        }, cancellationToken);

    /// <summary>Decodes a (1, 4, H/8, W/8) latent on the calling thread (e.g. an intermediate one, from <see cref="StableDiffusionOptions.StepCompleted"/>).</summary>
    public RgbImage Decode(ReadOnlySpan<float> latent, int[] shape, CancellationToken cancellationToken = default)
    {
        var (h, w) = LatentSize(shape);
        return Decode(latent, h, w, 0, 1, Stopwatch.StartNew(), null, cancellationToken);
    }

    private static (int Height, int Width) LatentSize(int[] shape) => shape is [1, 4, var h, var w]
        ? (h, w)
        : throw new ArgumentException($"A latent is (1, 4, H/8, W/8), not [{string.Join(',', shape)}].", nameof(shape));

    private IReadOnlyList<GeneratedImage> Generate(IProgress<PipelineProgress>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var images = _options.ImageCount;
        progress?.Report(new PipelineProgress(PipelineStage.EncodingText, 0, images, 0, 1, clock.Elapsed, 0));
        var guided = GuidanceScale is not (0 or 1);
        var cond = EncodeText(_options.Prompt, cancellationToken);
        var uncond = guided ? EncodeText(_options.NegativePrompt, cancellationToken) : null;

        Func<int, int, float[]>? timeIds = Folder.IsXL ? (height, width) => [height, width, 0, 0, height, width] : null;
        var latents = new List<(float[] Latent, long Seed)>();
        int latentHeight, latentWidth;
        using (var unet = new GuidedUNet(_backend, Folder.UNet, _schedule, cond, uncond, GuidanceScale, _options.BatchGuidance,
                   _options.Height / 8, _options.Width / 8, Folder.NativeSize / 8, timeIds))
        {
            (latentHeight, latentWidth) = (unet.LatentShape[2], unet.LatentShape[3]);
            // With a step observer, the last x₀ prediction of each step is kept for it.
            var lastDenoised = _options.StepCompleted is null ? null : new float[4 * latentHeight * latentWidth];
            Denoiser denoiser = lastDenoised is null
                ? (x, sigma, denoised) => unet.Denoise(x, sigma, denoised, cancellationToken)
                : (x, sigma, denoised) =>
                {
                    unet.Denoise(x, sigma, denoised, cancellationToken);
                    denoised.CopyTo(lastDenoised);
                };
            for (var image = 0; image < images; image++)
            {
                var seed = _options.Seed + image;
                var sampler = CreateSampler(seed);
                var latent = new float[4 * latentHeight * latentWidth];
                sampler.InitializeLatent(latent);
                while (sampler.StepIndex < sampler.StepCount)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var where = $"image {image + 1} of {images}, denoising step {sampler.StepIndex + 1} of {sampler.StepCount}";
                    try
                    {
                        sampler.Step(latent, denoiser);
                    }
                    catch (NonFiniteValueException e)
                    {
                        throw new NonFiniteValueException($"{where}: {e.Message}", e.Model, e.Operation, e);
                    }
                    CheckFinite(latent, $"{where}: the latent after the step");
                    progress?.Report(new PipelineProgress(PipelineStage.Denoising, image, images, sampler.StepIndex, sampler.StepCount, clock.Elapsed, unet.LastPeakBytes));
                    _options.StepCompleted?.Invoke(new DenoisingStep(image, images, sampler.StepIndex, sampler.StepCount, seed, latent, lastDenoised, latentHeight, latentWidth));
                }
                latents.Add((latent, seed));
            }
        }
        if (_options.CalibrateDecoder) CalibrateDecoder(latents.Select(l => l.Latent), latentHeight, latentWidth, cancellationToken);
        var results = new List<GeneratedImage>();
        for (var image = 0; image < latents.Count; image++)
        {
            var (latent, seed) = latents[image];
            var rgb = Decode(latent, latentHeight, latentWidth, image, images, clock, progress, cancellationToken);
            results.Add(new GeneratedImage(rgb, latent, [1, 4, latentHeight, latentWidth], seed));
        }
        return results;
    }

    private RgbImage Decode(ReadOnlySpan<float> latent, int latentHeight, int latentWidth, int image, int images, Stopwatch clock,
        IProgress<PipelineProgress>? progress, CancellationToken cancellationToken)
    {
        CheckFinite(latent, "the latent to decode");
        var tiled = TiledDecoding;
        var tileProgress = progress is null ? null : new SynchronousProgress<DecodingProgress>(p =>
            progress.Report(new PipelineProgress(PipelineStage.Decoding, image, images, p.Tile, p.Tiles, clock.Elapsed, p.PeakBytes)));
        return LatentDecoder.Decode(_backend, DecoderPath(tiled, latentHeight, latentWidth), latent, latentHeight, latentWidth, Folder.LatentScale,
            tiled ? _options.DecoderTileSize : null, tileProgress, cancellationToken);
    }

    /// <summary>
    /// The VAE decoder that decodes: the uint8 one in the low-memory profile, SDXL's tile decoder for its tiles, else the float
    /// one. The tile decoder takes 32×32 tiles only: a latent narrower than a tile is cut in narrower tiles, for the any-size decoder.
    /// </summary>
    private string DecoderPath(bool tiled, int latentHeight, int latentWidth) =>
        _options.MemoryProfile == MemoryProfile.LowMemory && Folder.VaeDecoderUInt8 is { } uint8 ? uint8
        : tiled && Folder.VaeTileDecoder is { } tile && _options.DecoderTileSize == 32 && latentHeight >= 32 && latentWidth >= 32 ? tile
        : Folder.VaeDecoder;

    /// <summary>
    /// Calibrates the uint8 VAE decoder (or, without one, the decoder that decodes) on <paramref name="latents"/>, cut in the
    /// tiles decoding uses, and writes its range_data.txt (<see cref="DecoderRangeDataPath"/>), replacing any.
    /// </summary>
    private void CalibrateDecoder(IEnumerable<float[]> latents, int latentHeight, int latentWidth, CancellationToken cancellationToken)
    {
        var tiled = TiledDecoding;
        var ranges = DecoderCalibration.Calibrate(Folder.VaeDecoderUInt8 ?? DecoderPath(tiled, latentHeight, latentWidth), latents, latentHeight, latentWidth, Folder.LatentScale,
            tiled ? _options.DecoderTileSize : null, new Runtime.InferenceSessionOptions { Threads = _options.Threads, AllowWeightsOutsideModelFolder = _options.ModelLoading.AllowWeightsOutsideModelFolder }, cancellationToken);
        var path = DecoderRangeDataPath!;
        var written = path + ".tmp";
        ranges.Save(written); // then renamed: an interrupted calibration leaves the old file whole
        File.Move(written, path, overwrite: true);
    }

    /// <summary>With <see cref="StableDiffusionOptions.CheckFinite"/>, throws at the first NaN or infinity of <paramref name="values"/>.</summary>
    private void CheckFinite(ReadOnlySpan<float> values, string what)
    {
        if (!_options.CheckFinite) return;
        for (var i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]))
                throw new NonFiniteValueException(string.Create(CultureInfo.InvariantCulture, $"{what} holds {values[i]} at element {i} (CheckFinite)"));
    }

    /// <summary>The sampler of one image: its noise stream starts from <paramref name="seed"/>.</summary>
    private Sampler CreateSampler(long seed) =>
        Sampler.Create(new SamplerOptions { Name = _sampler.Name, Steps = Steps, Karras = _options.KarrasSigmas, Seed = seed, Eta = _sampler.Eta }, _schedule);

    /// <summary>This library's sampler (and η, null for its default) for one of <see cref="SamplerNames"/>.</summary>
    private static (string Name, double? Eta) ResolveSampler(string name)
    {
        var key = name.Trim().ToLowerInvariant();
        if (Sampler.Names.Contains(key)) return (key, null);
        if (OriginalSamplerNames.TryGetValue(key, out var mapped)) return mapped;
        var missing = MissingOriginalSamplers.Contains(key) ? " is one of the original app's samplers that this build does not have" : " is not a sampler";
        throw new ArgumentException($"'{name}'{missing}; the samplers are {string.Join(", ", SamplerNames)}.");
    }

    /// <summary>The tokenizer(s) and text encoder(s) on <paramref name="prompt"/>, emphasis applied.</summary>
    internal TextConditioning EncodeText(string prompt, CancellationToken cancellationToken)
    {
        if (!Folder.IsXL)
        {
            var tokens = ClipTokenizer.FromFolder(Folder.Tokenizer).TokenizeWeighted(prompt);
            using var encoder = _backend.Open(Folder.TextEncoder, ComponentRole.TextEncoder);
            var (hidden, width, _) = TextEncoding.Encode(encoder, Folder.TextEncoder, tokens, "last_hidden_state", null, cancellationToken);
            return new TextConditioning(hidden, width, null);
        }
        float[] first, second, pooled;
        int firstWidth, secondWidth;
        using (var encoder = _backend.Open(Folder.TextEncoder, ComponentRole.TextEncoder))
            (first, firstWidth, _) = TextEncoding.Encode(encoder, Folder.TextEncoder, ClipTokenizer.FromFolder(Folder.Tokenizer).TokenizeWeighted(prompt),
                TextEncoding.PenultimateOutput(encoder, "out_13"), null, cancellationToken);
        using (var encoder = _backend.Open(Folder.TextEncoder2!, ComponentRole.TextEncoder))
        {
            (second, secondWidth, var pooledValues) = TextEncoding.Encode(encoder, Folder.TextEncoder2!, SecondTokenizer().TokenizeWeighted(prompt),
                TextEncoding.PenultimateOutput(encoder, "out_33"), TextEncoding.PooledOutput(encoder, Folder.TextEncoder2!), cancellationToken);
            pooled = pooledValues!;
        }
        // Per token: encoder 1's channels, then encoder 2's (77 × 2048 for SDXL).
        var tokenCount = first.Length / firstWidth;
        var joined = new float[tokenCount * (firstWidth + secondWidth)];
        for (var t = 0; t < tokenCount; t++)
        {
            first.AsSpan(t * firstWidth, firstWidth).CopyTo(joined.AsSpan(t * (firstWidth + secondWidth)));
            second.AsSpan(t * secondWidth, secondWidth).CopyTo(joined.AsSpan(t * (firstWidth + secondWidth) + firstWidth));
        }
        return new TextConditioning(joined, firstWidth + secondWidth, pooled);
    }

    /// <summary>
    /// SDXL's second tokenizer (OpenCLIP bigG's), which pads with <c>!</c> rather than the end token: its folder's
    /// special_tokens_map.json says so when it has its own folder with one; otherwise (the original's shared
    /// <c>sdxl_tokenizer/</c>) the pad token is set here.
    /// </summary>
    private ClipTokenizer SecondTokenizer()
    {
        var folder = Folder.Tokenizer2!;
        var ownMap = folder != Folder.Tokenizer && File.Exists(Path.Combine(folder, "special_tokens_map.json"));
        return ClipTokenizer.FromFolder(folder, new ClipTokenizerOptions { PadToken = ownMap ? null : "!" });
    }

    private static void Validate(StableDiffusionOptions options)
    {
        if (string.IsNullOrEmpty(options.ModelsPath)) throw new ArgumentException("ModelsPath is required.");
        if (options.Steps < 1) throw new ArgumentException("Steps must be at least 1.");
        if (options.GuidanceScale is { } scale && !float.IsFinite(scale))
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"GuidanceScale must be a finite number, not {scale}."));
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
