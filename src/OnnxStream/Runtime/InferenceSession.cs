using System.Diagnostics;
using Microsoft.Extensions.Options;
using OnnxStream.Graph;
using OnnxStream.Graph.Passes;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Tensors;
using OnnxStream.Weights;

namespace OnnxStream.Runtime;

/// <summary>
/// Runs a model one operation at a time, in order, holding only what the current operation needs:
/// each activation is freed right after its last consumer, and weights come from the weights provider
/// just before their operation and go back right after it.
/// </summary>
public sealed class InferenceSession : IDisposable
{
    private readonly IWeightsProvider _weights;
    private readonly XnnThreadPool _pool;
    private readonly IOperator[] _operators;
    private readonly Dictionary<string, int> _uses = [];
    private readonly bool _trace;
    private readonly Action<OperationTrace>? _operationCompleted;
    private readonly PreparedOperatorCache? _prepared;
    private readonly ActivationQuantization _quantization;
    private readonly RangeData? _ranges;
    private readonly HashSet<string>? _quantizedTensors;
    private readonly long _weightSliceBytes;
    private readonly HashSet<(GraphNode Node, int Input)> _slicedWeights = [];
    private readonly bool _checkFinite;

    /// <summary>Loads a model (a model.txt or a model folder) and prepares to run it.</summary>
    /// <exception cref="ModelFormatException">The model is malformed or uses an unsupported operator.</exception>
    public InferenceSession(string modelPath, IOptions<InferenceSessionOptions> options, OperatorRegistry? registry = null)
        : this(ModelLoader.Load(modelPath, new ModelLoadOptions { AllowWeightsOutsideModelFolder = options.Value.AllowWeightsOutsideModelFolder }), options.Value, registry)
    {
    }

    /// <summary>Prepares to run <paramref name="graph"/>.</summary>
    /// <exception cref="ModelFormatException">
    /// The model uses an unsupported operator, an activation of known shape would be larger than
    /// <see cref="InferenceSessionOptions.MaxTensorBytes"/>, or static quantization's ranges would quantize nothing.
    /// </exception>
    public InferenceSession(ModelGraph graph, InferenceSessionOptions? options = null, OperatorRegistry? registry = null)
    {
        options ??= new InferenceSessionOptions();
        registry ??= OperatorRegistry.Default;
        graph = ScheduledGraph(graph, options, registry);
        Graph = graph;
        _operators = graph.Nodes.Select(node => registry.TryGet(node.OpType, out var op)
                ? op
                : throw new ModelFormatException($"{node.Source}: operator '{node.OpType}' (node '{node.Name}') is not supported"))
            .ToArray();
        foreach (var node in graph.Nodes)
            foreach (var input in node.Inputs)
                if (input is { IsWeight: false }) _uses[input.Name] = _uses.GetValueOrDefault(input.Name) + 1;
        _trace = options.Trace;
        _checkFinite = options.CheckFinite;
        _operationCompleted = options.OperationCompleted;
        ArgumentOutOfRangeException.ThrowIfLessThan(options.WeightSliceBytes, 1, nameof(options.WeightSliceBytes));
        _weightSliceBytes = options.WeightSliceBytes;
        Allocator.MaxTensorBytes = options.MaxTensorBytes;
        TensorLimit.Check(graph, options.MaxTensorBytes);
        Precision = options.Precision == Precision.Float16Arithmetic && !NativeRuntime.SupportsFloat16
            ? Precision.Float16Storage
            : options.Precision;
        _quantization = options.ActivationQuantization;
        if (_quantization != ActivationQuantization.None)
        {
            if (options.Precision != Precision.Float32)
                throw new ArgumentException($"Activation quantization needs Precision.Float32, not {options.Precision}.", nameof(options));
            _quantizedTensors = options.QuantizedTensors?.Select(name => NameEscaping.TryUnescape(name, out var plain) ? plain : name)
                .Concat(options.QuantizedTensors).ToHashSet(StringComparer.Ordinal);
            if (_quantization == ActivationQuantization.Static) _ranges = StaticRanges(graph, options);
        }
        _pool = XnnThreadPool.Create(Math.Max(1, options.Threads));
        try
        {
            _weights = options.CustomWeightsProvider is { } custom
                ? custom() ?? throw new ArgumentException("CustomWeightsProvider returned null.", nameof(options))
                : options.WeightsProvider switch
                {
                    WeightsProviderKind.NoCache => new DiskNoCacheWeightsProvider(),
                    WeightsProviderKind.Ram => new RamWeightsProvider(),
                    WeightsProviderKind.MemoryMapped => new MemoryMappedWeightsProvider(),
                    _ => new DiskPrefetchWeightsProvider(options.PrefetchBudgetBytes, options.PrefetchHoldBytes),
                };
        }
        catch
        {
            _pool.Dispose();
            throw;
        }
        try
        {
            // Weights the operations read in slices themselves are not the provider's to read.
            var readsFiles = options.CustomWeightsProvider is null && options.WeightsProvider is WeightsProviderKind.Prefetch or WeightsProviderKind.NoCache;
            for (var i = 0; i < graph.Nodes.Count; i++)
                for (var j = 0; j < graph.Nodes[i].Inputs.Length; j++)
                    if (readsFiles && _operators[i].ReadsWeightSlices(j) && graph.Nodes[i].Inputs[j] is { Location: { Inline: null } location } &&
                        location.Length > _weightSliceBytes)
                        _slicedWeights.Add((graph.Nodes[i], j));
            _weights.Initialize(graph.Nodes.SelectMany(n => n.Inputs.Where((input, j) => input is { IsWeight: true } && !_slicedWeights.Contains((n, j))))
                .ToList()!, Allocator);
        }
        catch
        {
            _weights.Dispose();
            _pool.Dispose();
            throw;
        }
        if (options.CustomWeightsProvider is null && options.WeightsProvider == WeightsProviderKind.Ram)
            _prepared = new PreparedOperatorCache();
    }

    /// <summary>
    /// The precision runs use: the requested one, except that <see cref="Runtime.Precision.Float16Arithmetic"/>
    /// becomes <see cref="Runtime.Precision.Float16Storage"/> where the CPU has no float16 kernels.
    /// </summary>
    public Precision Precision { get; }

    /// <summary>
    /// Called with each float32 output of each operation, right after the operation (before the session
    /// quantizes or frees it): how <see cref="Calibrator"/> measures activations. The tensor must not be kept.
    /// </summary>
    internal Action<GraphNode, int, Tensor>? OutputObserver { get; set; }

    /// <summary>Native operators kept between runs (XNNPACK's packed weights): non-zero only with the Ram provider after a run.</summary>
    public int PreparedOperatorCount => _prepared?.Count ?? 0;

    /// <summary>
    /// The model, as run: attention subgraphs replaced when <see cref="InferenceSessionOptions.Attention"/> asks, GEGLU
    /// projections when <see cref="InferenceSessionOptions.FuseGeglu"/> does.
    /// </summary>
    public ModelGraph Graph { get; }

    /// <summary>The graph a session with <paramref name="options"/> runs: <paramref name="graph"/> with its fusions and in its order.</summary>
    internal static ModelGraph ScheduledGraph(ModelGraph graph, InferenceSessionOptions options, OperatorRegistry registry)
    {
        graph = AttentionFusion.Apply(graph, options.Attention, options.AttentionSlices);
        // Not under activation quantization: its ranges and its selection of tensors name the exported nodes.
        if (options.FuseGeglu && options.ActivationQuantization == ActivationQuantization.None) graph = GegluFusion.Apply(graph);
        if (options.FuseGroupNorm && options.ActivationQuantization == ActivationQuantization.None) graph = GroupNormFusion.Apply(graph);
        if (options.FuseLayerNorm && options.ActivationQuantization == ActivationQuantization.None) graph = LayerNormFusion.Apply(graph);
        return ShortcutHoisting.Apply(graph, (node, input) => registry.TryGet(node.OpType, out var op) && op.WritesOverInput(input));
    }

    /// <summary>The allocator every tensor of this session comes from: its counters are the session's memory.</summary>
    public NativeAllocator Allocator { get; } = new();

    /// <summary>
    /// Runs the model. Inputs are matched by name (escaped or not) and stay owned by the caller. Returns
    /// the graph outputs and any <paramref name="extraOutputs"/> (intermediate tensors to keep).
    /// </summary>
    public RunResult Run(IReadOnlyDictionary<string, Tensor> inputs, IEnumerable<string>? extraOutputs = null,
        CancellationToken cancellationToken = default)
    {
        var live = BindInputs(inputs);
        var callerOwned = new HashSet<Tensor>(live.Values);
        if (Precision != Precision.Float32)
            foreach (var (name, tensor) in live.ToList())
                if (tensor.ElementType == ElementType.Float32) live[name] = Narrow(tensor); // freed like any activation
        var kept = new HashSet<string>(Graph.Outputs.Select(o => o.Name));
        foreach (var extra in extraOutputs ?? []) kept.Add(ResolveName(extra, _uses.Keys.Concat(Graph.Outputs.Select(o => o.Name))));
        var remaining = new Dictionary<string, int>(_uses);
        var trace = _trace ? new List<OperationTrace>() : null;
        Allocator.ResetPeak();
        _weights.BeginRun();
        var clock = Stopwatch.StartNew();
        try
        {
            for (var i = 0; i < Graph.Nodes.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var start = clock.Elapsed;
                Allocator.TakeIntervalPeak();
                var node = Graph.Nodes[i];
                var writtenOver = RunNode(node, _operators[i], live, kept, remaining, callerOwned, cancellationToken);
                if (_checkFinite) CheckFinite(node, live);
                if (trace is not null || _operationCompleted is not null)
                {
                    var entry = new OperationTrace(node.Name, node.OpType, (clock.Elapsed - start).TotalMilliseconds, Allocator.CurrentBytes,
                        Allocator.TakeIntervalPeak());
                    trace?.Add(entry);
                    _operationCompleted?.Invoke(entry);
                }
                foreach (var input in node.Inputs)
                    if (input is { IsWeight: false } && --remaining[input.Name] == 0 && !kept.Contains(input.Name))
                    {
                        // An input the operation wrote its output over lives on as that output.
                        if (input.Name == writtenOver) live.Remove(input.Name);
                        else Free(live, input.Name, callerOwned);
                    }
                foreach (var output in node.Outputs)
                    if (!remaining.ContainsKey(output.Name) && !kept.Contains(output.Name))
                        Free(live, output.Name, callerOwned);
            }
            var missing = kept.Where(name => !live.ContainsKey(name)).ToList();
            if (missing.Count > 0)
                throw new ArgumentException($"No tensor named {string.Join(", ", missing.Select(n => $"'{n}'"))} exists in the model, or it was freed before the end.");
            var outputs = kept.ToDictionary(name => name, name => live.Remove(name, out var t) ? t : throw new InvalidOperationException());
            if (Precision != Precision.Float32)
                foreach (var (name, tensor) in outputs.ToList())
                    if (tensor.ElementType == ElementType.Float16 && !callerOwned.Contains(tensor))
                    {
                        outputs[name] = Widen(tensor);
                        tensor.Dispose();
                    }
            return new RunResult(outputs, Allocator.PeakBytes, clock.Elapsed, trace);
        }
        finally
        {
            foreach (var tensor in live.Values)
                if (!callerOwned.Contains(tensor)) tensor.Dispose();
            _weights.EndRun();
        }
    }

    /// <summary>Runs one operation; returns the name of the input it wrote its output over, if any.</summary>
    private string? RunNode(GraphNode node, IOperator op, Dictionary<string, Tensor> live, HashSet<string> kept, Dictionary<string, int> remaining,
        HashSet<Tensor> callerOwned, CancellationToken cancellationToken)
    {
        var inputs = new Tensor?[node.Inputs.Length];
        var acquired = new List<(TensorDescriptor, Tensor)>();
        Dictionary<int, WeightSliceReader>? readers = null;
        var converted = new List<Tensor>();
        OperatorContext? context = null;
        try
        {
            for (var j = 0; j < inputs.Length; j++)
            {
                var descriptor = node.Inputs[j];
                if (descriptor is null) continue;
                if (descriptor.IsWeight && _slicedWeights.Contains((node, j)))
                {
                    // Left unread: the operator reads the slices it needs (a tensor without data says what it is).
                    (readers ??= [])[j] = WeightSliceReader.Open(descriptor);
                    unsafe
                    {
                        inputs[j] = Tensor.Wrap(descriptor.WeightType!.Value, descriptor.Shape, null, descriptor.Quantization);
                    }
                }
                else if (descriptor.IsWeight)
                {
                    var weight = _weights.Acquire(descriptor, cancellationToken);
                    acquired.Add((descriptor, weight));
                    var takesQuantized = _quantization != ActivationQuantization.None && IsQuantized(weight) && op.TakesQuantized(j);
                    inputs[j] = op.TakesStoredWeight(j) || takesQuantized ? weight : ToComputeType(weight, converted);
                }
                else
                {
                    var tensor = live.TryGetValue(descriptor.Name, out var found)
                        ? found
                        : throw new ArgumentException($"{node}: input '{descriptor.Name}' was not supplied.");
                    inputs[j] = IsQuantized(tensor) && !op.TakesQuantized(j) ? Dequantize(tensor, converted) : tensor;
                }
            }
            var quantize = QuantizesOutput(node, kept);
            var dying = DyingInputs(node, inputs, live, kept, remaining, callerOwned);
            context = new OperatorContext(node, inputs, _pool, Allocator, _prepared)
            {
                DyingInputs = dying,
                WritableInputs = dying?.Where(op.WritesOverInput).ToList(),
                Float16Kernels = Precision == Precision.Float16Arithmetic,
                OutputQuantization = quantize && _ranges is not null ? _ranges.QuantizationOf(node.Name) : null,
                WeightSliceBytes = _weightSliceBytes,
                WeightReaders = readers,
            };
            op.Run(context);
            for (var k = 0; k < node.Outputs.Length; k++)
            {
                var output = context.Outputs[k] ?? throw context.Error($"did not produce output {k} '{node.Outputs[k].Name}'");
                if (output.ElementType == ElementType.Float32) OutputObserver?.Invoke(node, k, output);
                if (quantize && output.ElementType == ElementType.Float32 && OutputQuantizationOf(node, output, context) is { } quantization)
                {
                    context.Outputs[k] = Quantize(output, quantization);
                    output.Dispose();
                }
                if (Precision != Precision.Float32 && output.ElementType == ElementType.Float32)
                {
                    // float16 precisions keep every float activation in float16 (a Cast to float, mixed operands).
                    context.Outputs[k] = Narrow(output);
                    output.Dispose();
                }
            }
            for (var k = 0; k < node.Outputs.Length; k++) live[node.Outputs[k].Name] = context.Outputs[k]!;
            var writtenOver = context.WrittenOverInput is { } index ? node.Inputs[index]!.Name : null;
            context = null; // the outputs now belong to `live`
            return writtenOver;
        }
        catch (Exception e) when (e is not (OperatorException or OperationCanceledException or ArgumentException or ModelFormatException or IOException))
        {
            throw new OperatorException($"{node}: {e.Message}", e);
        }
        finally
        {
            if (context is not null)
                foreach (var output in context.Outputs) output?.Dispose();
            foreach (var tensor in converted) tensor.Dispose();
            // Every weight is released even if one release fails (a memory-mapped file truncated while the operation read it).
            Exception? releaseError = null;
            foreach (var (descriptor, tensor) in acquired)
            {
                try
                {
                    _weights.Release(descriptor, tensor);
                }
                catch (IOException e)
                {
                    releaseError ??= e;
                }
            }
            if (readers is not null)
                foreach (var reader in readers.Values) reader.Dispose();
            if (releaseError is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(releaseError);
        }
    }

    /// <summary>Throws at the first NaN or infinity of <paramref name="node"/>'s float outputs (<see cref="InferenceSessionOptions.CheckFinite"/>).</summary>
    private void CheckFinite(GraphNode node, Dictionary<string, Tensor> live)
    {
        foreach (var output in node.Outputs)
        {
            var tensor = live[output.Name];
            var index = NonFiniteScan.FirstNonFinite(tensor, _pool.ThreadCount);
            if (index < 0) continue;
            var value = tensor.ElementType == ElementType.Float32 ? tensor.Span<float>()[index] : (float)tensor.Span<Half>()[index];
            throw new NonFiniteValueException(
                $"{Graph.Source}: {node}: output '{output.Name}' {AxisHelper.Format(tensor.Shape)} holds {value} at element {index}, " +
                "the first non-finite value of the run (CheckFinite)", Graph.Source, node.Name);
        }
    }

    /// <summary>
    /// The inputs an operation may free early or write its output over: activations as they live (not converted copies)
    /// that this operation is the last to read (once only), that are not results or the caller's.
    /// </summary>
    private static List<int>? DyingInputs(GraphNode node, Tensor?[] inputs, Dictionary<string, Tensor> live, HashSet<string> kept,
        Dictionary<string, int> remaining, HashSet<Tensor> callerOwned)
    {
        List<int>? dying = null;
        for (var j = 0; j < node.Inputs.Length; j++)
            if (node.Inputs[j] is { IsWeight: false } input && !kept.Contains(input.Name) &&
                live.TryGetValue(input.Name, out var tensor) && ReferenceEquals(tensor, inputs[j]) && !callerOwned.Contains(tensor) &&
                remaining[input.Name] == 1 && node.Inputs.Count(other => other?.Name == input.Name) == 1)
                (dying ??= []).Add(j);
        return dying;
    }

    /// <summary>Whether the session stores <paramref name="node"/>'s output quantized: a selected single-output operation whose output is not kept as a result.</summary>
    private bool QuantizesOutput(GraphNode node, HashSet<string> kept) =>
        _quantization != ActivationQuantization.None && node.Outputs.Length == 1 && !kept.Contains(node.Outputs[0].Name) &&
        (_quantizedTensors is null || _quantizedTensors.Contains(node.Name) || _quantizedTensors.Contains(node.Outputs[0].Name)) &&
        (_ranges is null || _ranges.TryGetRange(node.Name, out _, out _));

    /// <summary>The quantization a float32 output is stored in: its calibrated range (static), or its own percentile range (dynamic).</summary>
    private Quantization? OutputQuantizationOf(GraphNode node, Tensor output, OperatorContext context) =>
        _ranges is not null
            ? _ranges.QuantizationOf(node.Name)
            : PercentileRange.Compute(output.Span<float>(), context.Parallel) is { } range ? Quantization.FromRange(range.Low, range.High) : null;

    private static bool IsQuantized(Tensor tensor) => tensor.ElementType == ElementType.UInt8 && tensor.Quantization is not null;

    private Tensor Quantize(Tensor tensor, Quantization quantization)
    {
        var quantized = Tensor.Allocate(ElementType.UInt8, tensor.Shape, Allocator, quantization);
        ConversionKernels.Quantize(_pool, tensor.ElementCount, tensor.Buffer<float>(), quantized.Buffer<byte>(), quantization);
        return quantized;
    }

    /// <summary>A quantized activation as float32, for an operation without a uint8 kernel (freed with <paramref name="converted"/> after it).</summary>
    private Tensor Dequantize(Tensor tensor, List<Tensor> converted)
    {
        var wide = Tensor.Allocate(ElementType.Float32, tensor.Shape, Allocator);
        converted.Add(wide);
        ConversionKernels.Dequantize(_pool, tensor.ElementCount, tensor.Buffer<byte>(), tensor.Quantization!.Value, wide.Buffer<float>());
        return wide;
    }

    /// <summary>
    /// The ranges of static quantization: <see cref="InferenceSessionOptions.RangeData"/>, or the range_data.txt file; an error
    /// when none of them would quantize an operation of <paramref name="graph"/> (an empty file, only empty ranges, or another
    /// model's), rather than a run silently in float.
    /// </summary>
    private static RangeData StaticRanges(ModelGraph graph, InferenceSessionOptions options)
    {
        var path = options.RangeData is not null ? null : options.RangeDataPath
            ?? ModelFolder.Of(graph.Source, options.AllowWeightsOutsideModelFolder).Resolve("range_data.txt", $"{graph.Source}: the model's range data");
        if (path is not null && !File.Exists(path))
            throw new ArgumentException($"Static activation quantization needs a range_data.txt: {path} does not exist (set RangeData or RangeDataPath, or calibrate one).");
        var ranges = options.RangeData ?? RangeData.Load(path!);
        var outputs = graph.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        if (graph.Nodes.Any(n => !n.Outputs.Any(o => outputs.Contains(o.Name)) && ranges.QuantizationOf(n.Name) is not null)) return ranges;
        var source = path ?? "InferenceSessionOptions.RangeData";
        var reason = ranges.Count == 0 ? "holds no range"
            : ranges.Names.All(n => ranges.QuantizationOf(n) is null) ? "holds only empty ranges (min = max = 0, or too narrow to encode)"
            : "names no operation whose output it would quantize (graph outputs stay float)";
        throw new ModelFormatException($"{source}: {reason}: static activation quantization would quantize nothing.");
    }

    private Tensor Narrow(Tensor tensor)
    {
        var half = Tensor.Allocate(ElementType.Float16, tensor.Shape, Allocator);
        ConversionKernels.ToFloat16(_pool, tensor.ElementCount, tensor.Buffer<float>(), half.Buffer<Half>());
        return half;
    }

    private Tensor Widen(Tensor tensor)
    {
        var wide = Tensor.Allocate(ElementType.Float32, tensor.Shape, Allocator);
        ConversionKernels.ToFloat32(_pool, tensor.ElementCount, tensor.Buffer<Half>(), wide.Buffer<float>());
        return wide;
    }

    /// <summary>
    /// A weight as operations compute with it, converted just before its operation (into
    /// <paramref name="converted"/>, freed right after it), never as a whole-model copy: in float32
    /// precision float16 and quantized uint8 weights are widened to float32; in the float16 precisions
    /// float32 and quantized weights are rounded to float16, like the activations they meet.
    /// </summary>
    private Tensor ToComputeType(Tensor weight, List<Tensor> converted)
    {
        var computeType = Precision == Precision.Float32 ? ElementType.Float32 : ElementType.Float16;
        var isFloat = weight.ElementType is ElementType.Float32 or ElementType.Float16 ||
                      weight.ElementType == ElementType.UInt8 && weight.Quantization is not null;
        if (!isFloat || weight.ElementType == computeType) return weight;
        Tensor wide;
        if (weight.ElementType == ElementType.Float32) wide = weight;
        else
        {
            wide = Tensor.Allocate(ElementType.Float32, weight.Shape, Allocator);
            converted.Add(wide);
            if (weight.ElementType == ElementType.Float16)
                ConversionKernels.ToFloat32(_pool, weight.ElementCount, weight.Buffer<Half>(), wide.Buffer<float>());
            else
                ConversionKernels.Dequantize(_pool, weight.ElementCount, weight.Buffer<byte>(), weight.Quantization!.Value, wide.Buffer<float>());
        }
        if (computeType == ElementType.Float32) return wide;
        var half = Narrow(wide);
        converted.Add(half);
        return half;
    }

    private Dictionary<string, Tensor> BindInputs(IReadOnlyDictionary<string, Tensor> inputs)
    {
        var bound = new Dictionary<string, Tensor>();
        foreach (var (name, tensor) in inputs)
        {
            var key = ResolveName(name, Graph.Inputs.Select(d => d.Name));
            var descriptor = Graph.Inputs.FirstOrDefault(d => d.Name == key)
                ?? throw new ArgumentException($"The model has no input '{name}' (its inputs: {string.Join(", ", Graph.Inputs.Select(d => d.Name))}).");
            var expected = descriptor.Shape;
            if (expected.Length != tensor.Shape.Length || expected.Where((d, i) => d != 0 && d != tensor.Shape[i]).Any())
                throw new ArgumentException($"Input '{key}' has shape [{string.Join(',', tensor.Shape)}]; the model expects [{string.Join(',', expected)}] (0 = any).");
            bound[key] = tensor;
        }
        var missing = Graph.Inputs.Where(d => !bound.ContainsKey(d.Name)).Select(d => d.Name).ToList();
        if (missing.Count > 0) throw new ArgumentException($"Missing model input(s): {string.Join(", ", missing)}.");
        return bound;
    }

    /// <summary>A tensor name as the graph has it: <paramref name="name"/> itself if known, else its unescaped form.</summary>
    private static string ResolveName(string name, IEnumerable<string> known)
    {
        var names = known as ICollection<string> ?? known.ToHashSet();
        return names.Contains(name) || !NameEscaping.TryUnescape(name, out var unescaped) ? name : unescaped;
    }

    private static void Free(Dictionary<string, Tensor> live, string name, HashSet<Tensor> callerOwned)
    {
        if (live.Remove(name, out var tensor) && !callerOwned.Contains(tensor)) tensor.Dispose();
    }

    /// <summary>Stops the provider's thread, frees kept weights and operators and the thread pool.</summary>
    public void Dispose()
    {
        _prepared?.Dispose();
        _weights.Dispose();
        _pool.Dispose();
    }
}
