using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Range: start, start + delta, ... while before limit; the three inputs are scalars (or
/// one-element vectors) of one type: float32, int64 or int32. As ONNX Runtime: the count is
/// ceil((limit − start) / delta) with the difference taken in the input type and the division in
/// double, and each value is the previous one plus delta (accumulated in the input type). A zero delta
/// is an error.
/// </summary>
internal sealed class RangeOperator : IOperator
{
    /// <summary>Most elements a Range may produce.</summary>
    private const long MaxCount = int.MaxValue;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var start = context.Input(0);
        var shape = InferShape(context, start, context.Input(1), context.Input(2));
        var output = context.Output(0, start.ElementType, shape);
        switch (start.ElementType)
        {
            case ElementType.Float32: Fill<float>(context, output); break;
            case ElementType.Int64: Fill<long>(context, output); break;
            default: Fill<int>(context, output); break;
        }
    }

    /// <summary>The output shape, [count].</summary>
    public static int[] InferShape(OperatorContext context, Tensor start, Tensor limit, Tensor delta)
    {
        foreach (var (tensor, name) in new[] { (start, "start"), (limit, "limit"), (delta, "delta") })
        {
            if (tensor.ElementType != start.ElementType)
                throw context.Error($"start, limit and delta must have one type, not {start.ElementType}, {limit.ElementType} and {delta.ElementType}");
            if (tensor.Shape.Length > 1 || tensor.ElementCount != 1)
                throw context.Error($"{name} must be a scalar, not {tensor}");
        }
        var count = start.ElementType switch
        {
            ElementType.Float32 => Count<float>(context),
            ElementType.Int64 => Count<long>(context),
            ElementType.Int32 => Count<int>(context),
            var other => throw context.Error($"does not support {other} inputs (supported: float32, int64, int32)"),
        };
        return [(int)count];
    }

    private static (T Start, T Limit, T Delta) Values<T>(OperatorContext context) where T : unmanaged =>
        (context.Input(0).Span<T>()[0], context.Input(1).Span<T>()[0], context.Input(2).Span<T>()[0]);

    private static long Count<T>(OperatorContext context) where T : unmanaged, INumber<T>
    {
        var (start, limit, delta) = Values<T>(context);
        if (delta == T.Zero) throw context.Error("delta is 0");
        var count = Math.Ceiling(double.CreateTruncating(limit - start) / double.CreateTruncating(delta));
        if (double.IsNaN(count) || count > MaxCount)
            throw context.Error($"start {start}, limit {limit} and delta {delta} give {count} values (at most {MaxCount})");
        return Math.Max(0, (long)count);
    }

    private static void Fill<T>(OperatorContext context, Tensor output) where T : unmanaged, INumber<T>
    {
        var (value, _, delta) = Values<T>(context);
        var span = output.Span<T>();
        for (var i = 0; i < span.Length; i++)
        {
            span[i] = value;
            value += delta;
        }
    }
}
