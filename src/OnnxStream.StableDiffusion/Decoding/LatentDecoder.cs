using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.Tensors;

namespace OnnxStream.StableDiffusion.Decoding;

/// <summary>Progress of a decoding: tiles done of all tiles (1 of 1 for a whole decoding).</summary>
/// <param name="Tile">Tiles decoded so far.</param>
/// <param name="Tiles">Tiles in all.</param>
/// <param name="PeakBytes">The most tracked native bytes the decoder held at once while decoding the last tile (0 when the backend cannot tell).</param>
public readonly record struct DecodingProgress(int Tile, int Tiles, long PeakBytes = 0);

/// <summary>
/// Decodes latents to RGB with a VAE decoder: the whole latent in one run, or overlapping tiles
/// (<see cref="LatentTiling"/>) blended linearly, so the decoder's memory is a tile's whatever the image size.
/// </summary>
public static class LatentDecoder
{
    /// <summary>
    /// Decodes the <c>(1, 4, <paramref name="height"/>, <paramref name="width"/>)</c> latent <paramref name="latent"/>
    /// (divided by <paramref name="latentScale"/> first); pixels are clamp((x + 1) / 2) · 255.
    /// </summary>
    /// <param name="backend">Runs the decoder.</param>
    /// <param name="modelPath">The decoder; for tiles, one that takes tiles of <paramref name="tileSize"/> or any shape.</param>
    /// <param name="latent">The latent, channel-major.</param>
    /// <param name="height">Latent rows.</param>
    /// <param name="width">Latent columns.</param>
    /// <param name="latentScale">The VAE's scaling factor.</param>
    /// <param name="tileSize">Side of the square latent tiles; null decodes the whole latent at once.</param>
    /// <param name="progress">Told after each tile.</param>
    /// <param name="cancellationToken">Stops between and within tiles.</param>
    public static RgbImage Decode(IInferenceBackend backend, string modelPath, ReadOnlySpan<float> latent, int height, int width,
        float latentScale, int? tileSize = null, IProgress<DecodingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (latent.Length != 4 * height * width)
            throw new ArgumentException($"The latent has {latent.Length} values; (1, 4, {height}, {width}) needs {4 * height * width}.", nameof(latent));
        var plan = Plan(height, width, tileSize);
        var tiles = plan.Tiles;
        var tileHeight = tiles[0].Height;
        var tileWidth = tiles[0].Width;
        using var model = OpenFor(backend, modelPath, tileHeight, tileWidth);
        var input = model.Inputs.Count == 1
            ? model.Inputs[0].Name
            : throw new ArgumentException($"{modelPath}: a VAE decoder has one input; this model has {model.Inputs.Count}.");
        var output = model.Outputs[0];

        Tensor? sum = null, weights = null;
        int scale = 0, imageHeight = 0, imageWidth = 0;
        try
        {
            using var tileLatent = Tensor.Allocate(ElementType.Float32, [1, 4, tileHeight, tileWidth], model.Allocator);
            for (var t = 0; t < tiles.Count; t++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var tile = tiles[t];
                CopyTile(latent, height, width, tile, latentScale, tileLatent.Span<float>());
                using var outputs = model.Run(new Dictionary<string, Tensor> { [input] = tileLatent }, [output], cancellationToken);
                var pixels = outputs[output];
                if (pixels.Shape is not [1, 3, var h, var w] || h % tileHeight != 0 || h / tileHeight != w / tileWidth)
                    throw new InvalidOperationException($"{modelPath}: the decoder returned [{string.Join(',', pixels.Shape)}] for a [1,4,{tileHeight},{tileWidth}] latent.");
                if (tiles.Count == 1)
                {
                    progress?.Report(new DecodingProgress(1, 1, outputs.PeakBytes));
                    return ToImage(pixels.Span<float>(), h, w);
                }
                if (sum is null)
                {
                    scale = h / tileHeight;
                    imageHeight = height * scale;
                    imageWidth = width * scale;
                    sum = Tensor.Allocate(ElementType.Float32, [3, imageHeight, imageWidth]);
                    weights = Tensor.Allocate(ElementType.Float32, [imageHeight, imageWidth]);
                }
                Blend(pixels.Span<float>(), tile, scale, plan.Overlap * scale, sum.Span<float>(), weights!.Span<float>(), imageHeight, imageWidth);
                progress?.Report(new DecodingProgress(t + 1, tiles.Count, outputs.PeakBytes));
            }
            var total = sum!.Span<float>();
            var weight = weights!.Span<float>();
            for (var c = 0; c < 3; c++)
                for (var i = 0; i < weight.Length; i++) total[c * weight.Length + i] /= weight[i];
            return ToImage(total, imageHeight, imageWidth);
        }
        finally
        {
            sum?.Dispose();
            weights?.Dispose();
        }
    }

    /// <summary>The tiles a latent is decoded in: one, the whole latent, when <paramref name="tileSize"/> is null.</summary>
    internal static TilePlan Plan(int height, int width, int? tileSize) =>
        tileSize is { } size ? LatentTiling.Plan(height, width, size) : new TilePlan([new LatentTile(0, 0, height, width)], 0);

    /// <summary>The decoder's input for <paramref name="tile"/>: the tile's latent values divided by <paramref name="latentScale"/>.</summary>
    internal static void CopyTile(ReadOnlySpan<float> latent, int height, int width, LatentTile tile, float latentScale, Span<float> destination)
    {
        for (var c = 0; c < 4; c++)
            for (var y = 0; y < tile.Height; y++)
                for (var x = 0; x < tile.Width; x++)
                    destination[(c * tile.Height + y) * tile.Width + x] = latent[(c * height + tile.Y + y) * width + tile.X + x] / latentScale;
    }

    /// <summary>
    /// The input shape to reload a decoder with so that it takes (1, 4, <paramref name="height"/>, <paramref name="width"/>)
    /// latents, or null when its declared <paramref name="shape"/> (0 = any) already does.
    /// </summary>
    internal static Dictionary<string, int[]>? ShapesFor(string input, int[] shape, int height, int width) =>
        shape is [_, _, var h, var w] && (h != 0 && h != height || w != 0 && w != width)
            ? new Dictionary<string, int[]> { [input] = [1, 4, height, width] }
            : null;

    /// <summary>Opens the decoder for latents of the given size (as declared when it already takes them).</summary>
    private static IComponentModel OpenFor(IInferenceBackend backend, string modelPath, int height, int width)
    {
        var model = backend.Open(modelPath, ComponentRole.VaeDecoder);
        if (model.Inputs is [var input] && ShapesFor(input.Name, input.Shape, height, width) is { } shapes)
        {
            model.Dispose();
            return backend.Open(modelPath, ComponentRole.VaeDecoder, shapes);
        }
        return model;
    }

    /// <summary>Adds a decoded tile, weighted by its linear ramps, into the running sum and weight total.</summary>
    private static void Blend(ReadOnlySpan<float> pixels, LatentTile tile, int scale, int ramp, Span<float> sum, Span<float> weights, int height, int width)
    {
        int tileHeight = tile.Height * scale, tileWidth = tile.Width * scale, top = tile.Y * scale, left = tile.X * scale;
        for (var y = 0; y < tileHeight; y++)
        {
            var wy = LatentTiling.Weight(y, top, tileHeight, height, ramp);
            for (var x = 0; x < tileWidth; x++)
            {
                var w = wy * LatentTiling.Weight(x, left, tileWidth, width, ramp);
                var at = (top + y) * width + left + x;
                weights[at] += w;
                for (var c = 0; c < 3; c++) sum[c * height * width + at] += w * pixels[(c * tileHeight + y) * tileWidth + x];
            }
        }
    }

    /// <summary>Channel-major [-1, 1] values to interleaved RGB bytes.</summary>
    internal static RgbImage ToImage(ReadOnlySpan<float> planes, int height, int width)
    {
        var rgb = new byte[3 * height * width];
        var plane = height * width;
        for (var i = 0; i < plane; i++)
            for (var c = 0; c < 3; c++)
                rgb[3 * i + c] = ToPixel(planes[c * plane + i]);
        return new RgbImage(width, height, rgb);
    }

    /// <summary>A [-1, 1] value as an 8-bit pixel value: clamp((x + 1) / 2) · 255, rounded.</summary>
    internal static byte ToPixel(float value) => (byte)Math.Clamp(MathF.Round((value + 1) * 127.5f), 0, 255);
}
