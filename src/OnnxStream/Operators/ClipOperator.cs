using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Clip: min(max(x, min), max) elementwise (so min &gt; max gives max, as ONNX Runtime does).
/// Opset 11+: min and max are optional scalar inputs of x's type; opset 6: float attributes min and
/// max (used when either attribute is present). float32, float16 (through float32), int64, int32.
/// </summary>
internal sealed class ClipOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var output = context.Output(0, x.ElementType, InferShape(context, x));
        var attributeForm = context.Attributes.Has("min") || context.Attributes.Has("max");
        if (attributeForm && (context.OptionalInput(1) is not null || context.OptionalInput(2) is not null))
            throw context.Error("has both min/max attributes (opset 6) and min/max inputs (opset 11)");
        switch (x.ElementType)
        {
            case ElementType.Int64:
            {
                if (attributeForm) throw context.Error("min/max attributes (opset 6) apply to float inputs only");
                var low = Bound<long>(context, x, 1, "min", long.MinValue);
                var high = Bound<long>(context, x, 2, "max", long.MaxValue);
                UnaryElementwise.Apply<long>(context, x, output, (a, b) =>
                {
                    TensorPrimitives.Max(a, low, b);
                    TensorPrimitives.Min(b, high, b);
                });
                break;
            }
            case ElementType.Int32:
            {
                if (attributeForm) throw context.Error("min/max attributes (opset 6) apply to float inputs only");
                var low = Bound<int>(context, x, 1, "min", int.MinValue);
                var high = Bound<int>(context, x, 2, "max", int.MaxValue);
                UnaryElementwise.Apply<int>(context, x, output, (a, b) =>
                {
                    TensorPrimitives.Max(a, low, b);
                    TensorPrimitives.Min(b, high, b);
                });
                break;
            }
            default:
            {
                float low, high;
                if (attributeForm)
                {
                    low = context.Attributes.GetFloat("min", float.MinValue);
                    high = context.Attributes.GetFloat("max", float.MaxValue);
                }
                else if (x.ElementType == ElementType.Float32)
                {
                    low = Bound(context, x, 1, "min", float.NegativeInfinity);
                    high = Bound(context, x, 2, "max", float.PositiveInfinity);
                }
                else
                {
                    low = (float)Bound(context, x, 1, "min", Half.NegativeInfinity);
                    high = (float)Bound(context, x, 2, "max", Half.PositiveInfinity);
                }
                UnaryElementwise.Apply(context, x, output, (a, b) =>
                {
                    TensorPrimitives.Max(a, low, b);
                    TensorPrimitives.Min(b, high, b);
                });
                break;
            }
        }
    }

    /// <summary>Checks the input's type; the output has its shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x) =>
        x.ElementType is ElementType.Float32 or ElementType.Float16 or ElementType.Int64 or ElementType.Int32
            ? (int[])x.Shape.Clone()
            : throw context.Error($"input must be float32, float16, int64 or int32, not {x.ElementType}");

    /// <summary>The value of optional scalar input <paramref name="index"/>, or <paramref name="fallback"/>.</summary>
    private static T Bound<T>(OperatorContext context, Tensor x, int index, string name, T fallback) where T : unmanaged
    {
        if (context.OptionalInput(index) is not { } bound) return fallback;
        if (bound.ElementType != x.ElementType)
            throw context.Error($"{name} must have the input's type {x.ElementType}, not {bound.ElementType}");
        if (bound.ElementCount != 1)
            throw context.Error($"{name} must be a scalar, not {bound}");
        return bound.Span<T>()[0];
    }
}
