using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.StableDiffusion.Decoding;

/// <summary>
/// Calibrates a VAE decoder's static (W8A8) quantization on the latents it is to decode, as the original app's
/// <c>--decoder-calibrate</c>: the decoder runs in float32 (<see cref="Calibrator"/>) on each latent, cut in the tiles
/// <see cref="LatentDecoder"/> decodes it in, and the widest 0.1%..99.9% range of each operation's output over all of
/// them is recorded (the decoder's range_data.txt).
/// </summary>
public static class DecoderCalibration
{
    /// <summary>The ranges of <paramref name="modelPath"/>'s activations over <paramref name="latents"/>.</summary>
    /// <param name="modelPath">The decoder (model folder, model.txt or .onnx); a uint8-weight folder runs with its weights dequantized.</param>
    /// <param name="latents">(1, 4, <paramref name="height"/>, <paramref name="width"/>) latents, channel-major, not yet divided by <paramref name="latentScale"/>.</param>
    /// <param name="height">Latent rows.</param>
    /// <param name="width">Latent columns.</param>
    /// <param name="latentScale">The VAE's scaling factor.</param>
    /// <param name="tileSize">Side of the square latent tiles, as decoding uses them; null: whole latents.</param>
    /// <param name="options">Threads and weights provider (the run is float32 whatever else they say).</param>
    /// <param name="cancellationToken">Stops between operations.</param>
    /// <exception cref="ArgumentException">There is no latent, one has the wrong length, or the model has more than one input.</exception>
    public static RangeData Calibrate(string modelPath, IEnumerable<float[]> latents, int height, int width, float latentScale, int? tileSize = null,
        InferenceSessionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(latents);
        var plan = LatentDecoder.Plan(height, width, tileSize);
        var tile = plan.Tiles[0];
        var load = new ModelLoadOptions { AllowWeightsOutsideModelFolder = options?.AllowWeightsOutsideModelFolder ?? false };
        var graph = ModelLoader.Load(modelPath, load);
        var input = graph.Inputs.Count == 1
            ? graph.Inputs[0]
            : throw new ArgumentException($"{modelPath}: a VAE decoder has one input; this model has {graph.Inputs.Count}.");
        if (LatentDecoder.ShapesFor(input.Name, input.Shape, tile.Height, tile.Width) is { } shapes) graph = ModelLoader.Load(modelPath, shapes, load);
        return Calibrator.Calibrate(graph, Inputs(), options, cancellationToken: cancellationToken);

        // One decoder input at a time, in one tensor refilled for each tile of each latent.
        IEnumerable<IReadOnlyDictionary<string, Tensor>> Inputs()
        {
            using var values = Tensor.Allocate(ElementType.Float32, [1, 4, tile.Height, tile.Width]);
            var set = new Dictionary<string, Tensor> { [input.Name] = values };
            foreach (var latent in latents)
            {
                if (latent.Length != 4 * height * width)
                    throw new ArgumentException($"A latent has {latent.Length} values; (1, 4, {height}, {width}) needs {4 * height * width}.", nameof(latents));
                foreach (var part in plan.Tiles)
                {
                    LatentDecoder.CopyTile(latent, height, width, part, latentScale, values.Span<float>());
                    yield return set;
                }
            }
        }
    }
}
