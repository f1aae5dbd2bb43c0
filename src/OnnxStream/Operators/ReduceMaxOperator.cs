namespace OnnxStream.Operators;

/// <summary>
/// ONNX ReduceMax: maxima over the axes given by the <c>axes</c> attribute (opset 13 and before) or by
/// int64 input 1 (opset 18; a node has one or the other). Negative axes count from the end; a repeated
/// axis counts once. keepdims (default 1) keeps the reduced dimensions as 1s. Empty or absent axes
/// reduce every dimension, unless noop_with_empty_axes is 1, which makes the node an identity. NaN
/// propagates (ORT's result depends on where the NaN is); the maximum of an empty set is −∞ (the
/// lowest value for integers), as in ORT. float32, float16, int64, int32. Runs
/// <see cref="ReduceSumOperator"/>'s engine.
/// </summary>
internal sealed class ReduceMaxOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context) => ReduceSumOperator.Reduce(context, ReduceSumOperator.Kind.Max);

    /// <summary>Checks the input and axes; see <see cref="ReduceSumOperator.InferShape"/>.</summary>
    internal static int[] InferShape(OperatorContext context, Tensors.Tensor data, Tensors.Tensor? axes, out bool[] reduced, out bool identity) =>
        ReduceSumOperator.InferShape(context, data, axes, out reduced, out identity);
}
