using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Runtime;

/// <summary>
/// Static quantization calibration, as the original OnnxStream's: runs a model in float32 over input sets and
/// records, for each single-output operation with a float32 output, the widest 0.1%..99.9% percentile range
/// (<see cref="PercentileRange"/>) its output had over the runs. Each output is measured the moment it is
/// produced and never kept, so calibration takes the memory of a plain float32 run (plus the measuring's few KiB).
/// </summary>
public static class Calibrator
{
    /// <summary>Calibrates the model at <paramref name="modelPath"/> (a model folder, model.txt or .onnx).</summary>
    /// <inheritdoc cref="Calibrate(ModelGraph, IEnumerable{IReadOnlyDictionary{string, Tensor}}, InferenceSessionOptions?, IProgress{int}?, CancellationToken)"/>
    public static RangeData Calibrate(string modelPath, IEnumerable<IReadOnlyDictionary<string, Tensor>> inputSets,
        InferenceSessionOptions? options = null, IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        Calibrate(ModelLoader.Load(modelPath, new ModelLoadOptions { AllowWeightsOutsideModelFolder = options?.AllowWeightsOutsideModelFolder ?? false }),
            inputSets, options, progress, cancellationToken);

    /// <summary>Calibrates <paramref name="graph"/>.</summary>
    /// <param name="graph">The model.</param>
    /// <param name="inputSets">
    /// One dictionary of model inputs per run, enumerated lazily (one set at a time need exist); the caller owns the tensors.
    /// </param>
    /// <param name="options">
    /// Threads and weights provider to run with; precision, attention and quantization are ignored (the model runs
    /// in float32, every operation as the graph has it).
    /// </param>
    /// <param name="progress">Told the number of input sets done after each run.</param>
    /// <param name="cancellationToken">Stops between operations.</param>
    /// <returns>The ranges, in model order, keyed by node name.</returns>
    /// <exception cref="ArgumentException">There is no input set, or one does not fit the model or holds NaN or infinity.</exception>
    public static RangeData Calibrate(ModelGraph graph, IEnumerable<IReadOnlyDictionary<string, Tensor>> inputSets,
        InferenceSessionOptions? options = null, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(inputSets);
        options ??= new InferenceSessionOptions();
        var floatOptions = new InferenceSessionOptions
        {
            Threads = options.Threads,
            WeightsProvider = options.WeightsProvider,
            CustomWeightsProvider = options.CustomWeightsProvider,
            PrefetchBudgetBytes = options.PrefetchBudgetBytes,
            PrefetchHoldBytes = options.PrefetchHoldBytes,
            MaxTensorBytes = options.MaxTensorBytes,
            // The ranges name the exported nodes, which static quantization runs unfused.
            FuseGroupNorm = false,
            FuseLayerNorm = false,
        };
        var ranges = new RangeData();
        using var session = new InferenceSession(graph, floatOptions);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.Threads) };
        session.OutputObserver = (node, index, output) =>
        {
            if (node.Outputs.Length == 1 && PercentileRange.Compute(output.Span<float>(), parallel) is { } range)
                ranges.Include(node.Name, range.Low, range.High);
        };
        var runs = 0;
        foreach (var inputs in inputSets)
        {
            CheckFinite(inputs, runs + 1);
            using (session.Run(inputs, cancellationToken: cancellationToken)) { }
            runs++;
            progress?.Report(runs);
        }
        if (runs == 0) throw new ArgumentException("Calibration needs at least one input set.", nameof(inputSets));
        return ranges;
    }

    /// <summary>Refuses float inputs holding NaN or infinity: the ranges measured from them would mean nothing.</summary>
    private static void CheckFinite(IReadOnlyDictionary<string, Tensor> inputs, int set)
    {
        foreach (var (name, tensor) in inputs)
        {
            var finite = tensor.ElementType switch
            {
                ElementType.Float32 => System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(tensor.Span<float>()),
                ElementType.Float16 => System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<Half>(tensor.Span<Half>()),
                _ => true,
            };
            if (!finite)
                throw new ArgumentException($"Input '{name}' of input set {set} holds NaN or infinity: calibration needs finite inputs.", nameof(inputs));
        }
    }
}
