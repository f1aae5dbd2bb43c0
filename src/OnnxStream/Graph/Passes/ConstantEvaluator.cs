using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Tensors;
using OnnxStream.Weights;

namespace OnnxStream.Graph.Passes;

/// <summary>
/// Runs one node at load time on weight inputs, the way <see cref="Runtime.InferenceSession"/> runs it
/// (float16 and quantized weights widened to float32 first), on a one-thread pool and its own allocator,
/// which refuses any tensor over <see cref="MaxTensorBytes"/>: a node that would build a large constant
/// (a ConstantOfShape, Tile or Expand to a huge shape) fails instead, and is left for the session to run.
/// </summary>
internal sealed class ConstantEvaluator : IDisposable
{
    /// <summary>The most bytes of one tensor computed at load: far above the constants kept (<see cref="WeightLocation.MaxInlineBytes"/>).</summary>
    public const long MaxTensorBytes = 16 << 20;

    private XnnThreadPool? _pool;

    /// <summary>Where the evaluator's tensors come from.</summary>
    public NativeAllocator Allocator { get; } = new() { MaxTensorBytes = MaxTensorBytes };

    /// <summary>
    /// The node's outputs (the caller disposes them), or null when <paramref name="accept"/> rejects the
    /// inputs (e.g. the outputs would be too large to fold).
    /// </summary>
    public Tensor[]? Run(GraphNode node, IOperator op, Func<Tensor?[], bool>? accept = null)
    {
        var inputs = new Tensor?[node.Inputs.Length];
        var owned = new List<Tensor>();
        try
        {
            for (var i = 0; i < inputs.Length; i++)
            {
                var descriptor = node.Inputs[i];
                if (descriptor is null) continue;
                if (!descriptor.IsWeight) throw new ArgumentException($"{node}: input '{descriptor.Name}' is not a constant.");
                inputs[i] = Read(descriptor, owned);
            }
            if (accept is not null && !accept(inputs)) return null;
            var outputs = Run(node, op, inputs);
            // Float16 constants are widened to compute (as the session does); a result of float16 constants
            // alone is float16 again, so a float16 model keeps its type where it folds.
            var floats = node.Inputs.Where(i => i?.WeightType is ElementType.Float32 or ElementType.Float16).ToList();
            if (floats.Count > 0 && floats.All(i => i!.WeightType == ElementType.Float16))
                for (var k = 0; k < outputs.Length; k++)
                    if (outputs[k].ElementType == ElementType.Float32)
                    {
                        var half = Tensor.Allocate(ElementType.Float16, outputs[k].Shape, Allocator);
                        ConversionKernels.ToFloat16(_pool!, outputs[k].ElementCount, outputs[k].Buffer<float>(), half.Buffer<Half>());
                        outputs[k].Dispose();
                        outputs[k] = half;
                    }
            return outputs;
        }
        finally
        {
            foreach (var tensor in owned) tensor.Dispose();
        }
    }

    /// <summary>The node's outputs on the given <paramref name="inputs"/> (the caller disposes the outputs).</summary>
    public Tensor[] Run(GraphNode node, IOperator op, Tensor?[] inputs)
    {
        var context = new OperatorContext(node, inputs, _pool ??= XnnThreadPool.Create(1), Allocator);
        try
        {
            op.Run(context);
            var outputs = new Tensor[node.Outputs.Length];
            for (var k = 0; k < outputs.Length; k++)
                outputs[k] = context.Outputs[k] ?? throw context.Error($"did not produce output {k} '{node.Outputs[k].Name}'");
            return outputs;
        }
        catch
        {
            foreach (var output in context.Outputs) output?.Dispose();
            throw;
        }
    }

    /// <summary>Runs <paramref name="op"/> on <paramref name="inputs"/> with its outputs going to <paramref name="capture"/> (shape inference).</summary>
    public void RunWithCapture(GraphNode node, IOperator op, Tensor?[] inputs, IOutputCapture capture) =>
        op.Run(new OperatorContext(node, inputs, _pool ??= XnnThreadPool.Create(1), Allocator, capture: capture));

    /// <summary>A weight's values as an operation sees them (widened like the session does); the tensors go to <paramref name="owned"/>.</summary>
    public Tensor Read(TensorDescriptor weight, List<Tensor> owned)
    {
        var tensor = WeightFileReader.Read(weight, Allocator);
        owned.Add(tensor);
        return Widen(tensor, owned, _pool ??= XnnThreadPool.Create(1));
    }

    /// <summary>The element type an operation sees for <paramref name="weight"/>: float32 for float16 and quantized weights.</summary>
    public static ElementType ComputeType(TensorDescriptor weight) =>
        weight.WeightType is ElementType.Float16 || weight.WeightType == ElementType.UInt8 && weight.Quantization is not null
            ? ElementType.Float32
            : weight.WeightType!.Value;

    private Tensor Widen(Tensor weight, List<Tensor> owned, XnnThreadPool pool)
    {
        if (weight.ElementType is not (ElementType.Float16 or ElementType.UInt8) ||
            (weight.ElementType == ElementType.UInt8 && weight.Quantization is null))
            return weight;
        var wide = Tensor.Allocate(ElementType.Float32, weight.Shape, Allocator);
        owned.Add(wide);
        if (weight.ElementType == ElementType.Float16)
            ConversionKernels.ToFloat32(pool, weight.ElementCount, weight.Buffer<Half>(), wide.Buffer<float>());
        else
            ConversionKernels.Dequantize(pool, weight.ElementCount, weight.Buffer<byte>(), weight.Quantization!.Value, wide.Buffer<float>());
        return wide;
    }

    /// <summary>Frees the thread pool.</summary>
    public void Dispose() => _pool?.Dispose();
}
