using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>What an operator sees of one node's execution: inputs, attributes, threads, output allocation.</summary>
public sealed class OperatorContext
{
    private readonly Tensor?[] _inputs;
    private readonly Tensor?[] _outputs;
    private readonly PreparedOperatorCache? _prepared;
    private readonly IOutputCapture? _capture;

    internal OperatorContext(GraphNode node, Tensor?[] inputs, XnnThreadPool pool, NativeAllocator allocator,
        PreparedOperatorCache? prepared = null, IOutputCapture? capture = null)
    {
        _prepared = prepared;
        _capture = capture;
        Node = node;
        _inputs = inputs;
        _outputs = new Tensor?[node.Outputs.Length];
        Pool = pool;
        Allocator = allocator;
        Parallel = new ParallelOptions { MaxDegreeOfParallelism = pool.ThreadCount };
    }

    /// <summary>The node being executed.</summary>
    public GraphNode Node { get; }

    /// <summary>The node's attributes.</summary>
    public NodeAttributes Attributes => Node.Attributes;

    /// <summary>The native kernels' thread pool.</summary>
    public XnnThreadPool Pool { get; }

    /// <summary>Options that bound managed parallel loops to the same number of threads.</summary>
    public ParallelOptions Parallel { get; }

    /// <summary>Where outputs and scratch tensors come from (so they are accounted).</summary>
    public NativeAllocator Allocator { get; }

    /// <summary>Number of input positions (omitted optional inputs included).</summary>
    public int InputCount => _inputs.Length;

    /// <summary>Number of outputs the node declares.</summary>
    public int OutputCount => _outputs.Length;

    /// <summary>A required input.</summary>
    public Tensor Input(int index) =>
        OptionalInput(index) ?? throw Error($"input {index} is required but missing");

    /// <summary>An optional input, or null when omitted or beyond the inputs given.</summary>
    public Tensor? OptionalInput(int index) => index < _inputs.Length ? _inputs[index] : null;

    /// <summary>
    /// Allocates output <paramref name="index"/>; output 0 may instead be the memory of an input the operator writes over
    /// (see <see cref="IOperator.WritesOverInput"/>: same type and element count, viewed with the output's shape).
    /// </summary>
    public Tensor Output(int index, ElementType type, ReadOnlySpan<int> shape, Quantization? quantization = null)
    {
        if (index >= _outputs.Length) throw Error($"has {_outputs.Length} outputs; output {index} does not exist");
        if (_outputs[index] is not null) throw Error($"output {index} was allocated twice");
        foreach (var dimension in shape)
            if (dimension < 0) throw Error($"output {index} would have a negative dimension [{string.Join(',', shape.ToArray())}]");
        if (index == 0 && quantization is null && _capture is null)
            foreach (var j in WritableInputs ?? [])
                if (_inputs[j] is { Quantization: null } input && input.ElementType == type && input.ElementCount == Shapes.ElementCount(shape))
                {
                    WrittenOverInput = j;
                    return _outputs[0] = input.Shape.AsSpan().SequenceEqual(shape) ? input : input.Reshaped(shape);
                }
        return _outputs[index] = _capture is null
            ? Allocate($"output {index} '{Node.Outputs[index].Name}'", type, shape, quantization)
            : _capture.Declare(index, type, shape, quantization);
    }

    /// <summary>A scratch tensor the operator must dispose itself.</summary>
    public Tensor Scratch(ElementType type, ReadOnlySpan<int> shape, Quantization? quantization = null) =>
        _capture is null ? Allocate("scratch tensor", type, shape, quantization) : throw new OutputsCapturedException(complete: false);

    /// <summary>A tensor from <see cref="Allocator"/>; one over its <see cref="NativeAllocator.MaxTensorBytes"/> is an error naming <paramref name="what"/>.</summary>
    private Tensor Allocate(string what, ElementType type, ReadOnlySpan<int> shape, Quantization? quantization)
    {
        try
        {
            return Tensor.Allocate(type, shape, Allocator, quantization);
        }
        catch (TensorTooLargeException e)
        {
            throw new OperatorException($"{Node}: {what}: {e.Message}", e);
        }
    }

    /// <summary>
    /// A native operator built from this node's weights: the one the session keeps from an earlier run
    /// when it keeps them (the Ram provider; then <paramref name="owned"/> is false), else a new one
    /// the caller disposes. Only for operators that depend on nothing but the node's weights and attributes.
    /// </summary>
    internal T Prepare<T>(Func<T> create, out bool owned) where T : class, IDisposable
    {
        owned = _prepared is null;
        return _prepared is null ? create() : _prepared.GetOrCreate(Node, create);
    }

    /// <summary>
    /// Whether float16 inputs should run XNNPACK's float16 kernels where the operator has one (the session's
    /// <see cref="Runtime.Precision.Float16Arithmetic"/>; the CPU supports them); otherwise operators compute
    /// float16 data in float32 and round the results.
    /// </summary>
    public bool Float16Kernels { get; init; }

    /// <summary>
    /// Static activation quantization: the encoding the session stores output 0 in. An operator with a uint8
    /// kernel may then write output 0 as uint8 itself, in this quantization (or the one its kernel fixes, as
    /// Sigmoid's 1/256); a float32 output is quantized by the session. Null: write float.
    /// </summary>
    public Quantization? OutputQuantization { get; init; }

    /// <summary>
    /// When weights are not kept between runs: the most bytes of one weight that an operation converts and packs at
    /// once (see <see cref="InferenceSessionOptions.WeightSliceBytes"/>).
    /// </summary>
    public long WeightSliceBytes { get; init; } = InferenceSessionOptions.DefaultWeightSliceBytes;

    /// <summary>
    /// The reader of input <paramref name="index"/> when the session left that weight unread for the operator to read in
    /// slices (see <see cref="IOperator.ReadsWeightSlices"/>); null when the input holds its data.
    /// </summary>
    public Weights.WeightSliceReader? WeightReader(int index) => WeightReaders?.GetValueOrDefault(index);

    /// <summary>
    /// Input <paramref name="index"/>, a weight the session left unread (see <see cref="WeightReader"/>), read whole into a
    /// scratch tensor the caller disposes: for the paths of an operator that need all of it at once.
    /// </summary>
    internal Tensor ReadWhole(int index)
    {
        var reader = WeightReader(index) ?? throw new InvalidOperationException($"input {index} was not left unread");
        var w = Input(index);
        var whole = Scratch(w.ElementType, w.Shape, w.Quantization);
        try
        {
            reader.Read(0, whole.Bytes);
            return whole;
        }
        catch
        {
            whole.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Inputs that die with this operation and that the operator may write output 0 over (see
    /// <see cref="IOperator.WritesOverInput"/>): <see cref="Output"/> hands back the first that fits.
    /// </summary>
    internal IReadOnlyList<int>? WritableInputs { get; init; }

    /// <summary>
    /// Whether the operator runs for shape inference only (<see cref="Graph.Passes.ShapeInference"/>): an operator that
    /// allocates its output after scratch memory declares it first then.
    /// </summary>
    internal bool InfersShapes => _capture is not null;

    /// <summary>The input that <see cref="Output"/> handed back as output 0, if any.</summary>
    internal int? WrittenOverInput { get; private set; }

    /// <summary>Whether output 0 is the memory of input <paramref name="index"/> (see <see cref="IOperator.WritesOverInput"/>).</summary>
    public bool WrittenOver(int index) => WrittenOverInput == index;

    /// <summary>Activations that this operation is the last to read (and that are not results or the caller's).</summary>
    internal IReadOnlyList<int>? DyingInputs { get; init; }

    /// <summary>
    /// Whether this operation is the last to read input <paramref name="index"/>, an activation that is not a result nor the
    /// caller's and that no other tensor shares: the operator may then change it in place (it is freed afterwards).
    /// </summary>
    internal bool InputDies(int index) => DyingInputs?.Contains(index) == true && _inputs[index] is not null && WrittenOverInput != index;

    /// <summary>
    /// Frees input <paramref name="index"/> now when this operation is the last to read it (an activation that is not a
    /// result): an operator that has copied what it needs (Conv's NHWC transpose) need not hold it to the end. The input
    /// must not be used after this returns true.
    /// </summary>
    internal bool ReleaseInput(int index)
    {
        if (DyingInputs?.Contains(index) != true || _inputs[index] is not { } input || WrittenOverInput == index) return false;
        input.Dispose();
        _inputs[index] = null;
        return true;
    }

    /// <summary>The weights left unread, by input index (see <see cref="WeightReader"/>).</summary>
    internal IReadOnlyDictionary<int, Weights.WeightSliceReader>? WeightReaders { get; init; }

    /// <summary>Whether the session keeps prepared operators between runs (see <see cref="Prepare{T}"/>).</summary>
    internal bool KeepsPreparedOperators => _prepared is not null;

    /// <summary>Whether input <paramref name="index"/> is one of the model's weights (not an activation).</summary>
    public bool IsWeight(int index) => index < Node.Inputs.Length && Node.Inputs[index] is { IsWeight: true };

    /// <summary>A 0/1 INT attribute (transA, ceil_mode, ...) as a bool; <paramref name="fallback"/> when absent, an error for any other value.</summary>
    public bool Flag(string name, bool fallback = false) => Attributes.GetInt(name, fallback ? 1 : 0) switch
    {
        0 => false,
        1 => true,
        var value => throw Error($"{name} {value} must be 0 or 1"),
    };

    /// <summary>An exception naming the node, for bad inputs or attributes.</summary>
    public OperatorException Error(string message) => new($"{Node}: {message}");

    internal Tensor?[] Outputs => _outputs;
}

/// <summary>An operator could not run on its inputs; the message names the node.</summary>
public sealed class OperatorException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OperatorException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// Takes the outputs an operator declares when it runs for shape inference only (see
/// <see cref="Graph.Passes.ShapeInference"/>): it records each output's type and shape, and either stops
/// the operator (<see cref="OutputsCapturedException"/>) or hands it a placeholder to write into.
/// </summary>
internal interface IOutputCapture
{
    /// <summary>Records output <paramref name="index"/>; returns where the operator may write it, or throws to stop it.</summary>
    Tensor Declare(int index, ElementType type, ReadOnlySpan<int> shape, Quantization? quantization);
}

/// <summary>Stops an operator run for shape inference once its outputs are known (or when it would need scratch memory).</summary>
internal sealed class OutputsCapturedException(bool complete) : Exception("shape inference: outputs captured")
{
    /// <summary>Whether every output was declared before the stop.</summary>
    public bool Complete { get; } = complete;
}
