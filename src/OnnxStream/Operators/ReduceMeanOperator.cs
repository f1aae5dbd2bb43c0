namespace OnnxStream.Operators;

/// <summary>
/// ONNX ReduceMean: means over the axes given by the <c>axes</c> attribute (opset 13 and before) or by
/// int64 input 1 (opset 18; a node has one or the other). Negative axes count from the end; a repeated
/// axis counts once. keepdims (default 1) keeps the reduced dimensions as 1s. Empty or absent axes
/// reduce every dimension, unless noop_with_empty_axes is 1, which makes the node an identity. The mean
/// of an empty set is 0, as in ORT. float32 and float16 (float32 SIMD sums of blocks, totalled in
/// double, divided, rounded), int64 and int32 (wrapping sum, truncating division). The common
/// LayerNorm-decomposition case, the last axis of [B,S,C], is one SIMD sum per contiguous row. Runs
/// <see cref="ReduceSumOperator"/>'s engine.
/// </summary>
internal sealed class ReduceMeanOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context) => ReduceSumOperator.Reduce(context, ReduceSumOperator.Kind.Mean);

    /// <summary>Checks the input and axes; see <see cref="ReduceSumOperator.InferShape"/>.</summary>
    internal static int[] InferShape(OperatorContext context, Tensors.Tensor data, Tensors.Tensor? axes, out bool[] reduced, out bool identity) =>
        ReduceSumOperator.InferShape(context, data, axes, out reduced, out identity);
}
