using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Shape: the input's dimensions as an int64 vector. Opset 15's start and end attributes select
/// dims[start:end] (negative values count from the end; out-of-range values are clamped).
/// </summary>
internal sealed class ShapeOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var data = context.Input(0);
        var (start, end) = Range(context, data.Shape.Length);
        var output = context.Output(0, ElementType.Int64, [end - start]);
        var values = output.Span<long>();
        for (var i = start; i < end; i++) values[i - start] = data.Shape[i];
    }

    /// <summary>The output shape: [the number of dimensions selected].</summary>
    public static int[] InferShape(OperatorContext context, Tensor data)
    {
        var (start, end) = Range(context, data.Shape.Length);
        return [end - start];
    }

    private static (int Start, int End) Range(OperatorContext context, int rank)
    {
        int Clamp(long value) => (int)Math.Clamp(value < 0 ? value + rank : value, 0, rank);
        var start = Clamp(context.Attributes.GetInt("start", 0));
        var end = Clamp(context.Attributes.GetInt("end", rank));
        return (start, Math.Max(start, end));
    }
}
