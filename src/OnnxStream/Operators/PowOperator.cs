using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Pow: X^Y elementwise with broadcasting; the output has X's type. X: float32, float16, int64,
/// int32; Y: float32, float16, int64, int32. A float32 base with a float32 exponent uses MathF.Pow
/// (the C library's powf, as ONNX Runtime); other combinations are computed in double and converted
/// (integers truncating), as ONNX Runtime's std::pow does; a float base with a one-element exponent
/// of 2 or 3 is multiplied out (vectorized), as ONNX Runtime does. float16 operands are widened to
/// float32 and a float16 result is rounded from float32.
/// </summary>
internal sealed class PowOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var y = context.Input(1);
        var shape = InferShape(context, x, y);
        var output = context.Output(0, x.ElementType, shape);
        if (output.ElementCount == 0) return;

        var xf = x.ElementType == ElementType.Float16 ? Layout.ToFloat32(context, x, "X", out _) : x;
        var yf = y.ElementType == ElementType.Float16 ? Layout.ToFloat32(context, y, "Y", out _) : y;
        var result = output.ElementType == ElementType.Float16 ? context.Scratch(ElementType.Float32, shape) : output;
        try
        {
            if (xf.ElementType == ElementType.Float32 && SmallExponent(yf) is { } exponent)
            {
                // x² and x³ as products, as ONNX Runtime computes them (a one-element Y leaves the layout as X's).
                UnaryElementwise.Apply(context, xf, result, exponent == 2
                    ? static (a, b) => TensorPrimitives.Multiply(a, a, b)
                    : static (a, b) =>
                    {
                        TensorPrimitives.Multiply(a, a, b);
                        TensorPrimitives.Multiply(b, a, b);
                    });
            }
            else
            {
                switch (xf.ElementType)
                {
                    case ElementType.Float32: WithExponent<float>(context, xf, yf, result); break;
                    case ElementType.Int64: WithExponent<long>(context, xf, yf, result); break;
                    default: WithExponent<int>(context, xf, yf, result); break;
                }
            }
            if (result != output) Layout.FromFloat32(context, result, output);
        }
        finally
        {
            if (xf != x) xf.Dispose();
            if (yf != y) yf.Dispose();
            if (result != output) result.Dispose();
        }
    }

    /// <summary>Checks the types; the output shape is the broadcast of the operands'.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x, Tensor y)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16 or ElementType.Int64 or ElementType.Int32))
            throw context.Error($"X must be float32, float16, int64 or int32, not {x.ElementType}");
        if (y.ElementType is not (ElementType.Float32 or ElementType.Float16 or ElementType.Int64 or ElementType.Int32))
            throw context.Error($"Y must be float32, float16, int64 or int32, not {y.ElementType}");
        return Broadcasting.Shape(context, x.Shape, y.Shape);
    }

    /// <summary>2 or 3 when Y is one element of that value, else null.</summary>
    private static int? SmallExponent(Tensor y)
    {
        if (y.ElementCount != 1) return null;
        double value = y.ElementType switch
        {
            ElementType.Float32 => y.Span<float>()[0],
            ElementType.Int64 => y.Span<long>()[0],
            _ => y.Span<int>()[0],
        };
        return value is 2 or 3 ? (int)value : null;
    }

    private static void WithExponent<T>(OperatorContext context, Tensor x, Tensor y, Tensor output)
        where T : unmanaged, INumberBase<T>
    {
        switch (y.ElementType)
        {
            case ElementType.Float32 when typeof(T) == typeof(float):
                Broadcasting.Binary<float, float, float, SinglePow>(context, x, y, output);
                break;
            case ElementType.Float32:
                Broadcasting.Binary<T, float, T, DoublePow<T, float>>(context, x, y, output);
                break;
            case ElementType.Int64:
                Broadcasting.Binary<T, long, T, DoublePow<T, long>>(context, x, y, output);
                break;
            default:
                Broadcasting.Binary<T, int, T, DoublePow<T, int>>(context, x, y, output);
                break;
        }
    }

    private readonly struct SinglePow : Broadcasting.IBinaryOp<float, float, float>
    {
        public static float Apply(float x, float y) => MathF.Pow(x, y);
    }

    private readonly struct DoublePow<TX, TY> : Broadcasting.IBinaryOp<TX, TY, TX> where TX : INumberBase<TX> where TY : INumberBase<TY>
    {
        public static TX Apply(TX x, TY y) => TX.CreateTruncating(Math.Pow(double.CreateTruncating(x), double.CreateTruncating(y)));
    }
}
