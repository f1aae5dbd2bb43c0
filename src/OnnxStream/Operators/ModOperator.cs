using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Mod with broadcasting. fmod = 0 (the default, integers only): the remainder has the divisor's
/// sign, as Python's %; fmod = 1: C's fmod, the remainder has the dividend's sign. int64 and int32
/// (a zero divisor is an error), float32 and float16 (fmod = 1 only, as ONNX requires; float16
/// through float32, which is exact for fmod).
/// </summary>
internal sealed class ModOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var a = context.Input(0);
        var b = context.Input(1);
        var shape = InferShape(context, a, b, out var fmod);
        var output = context.Output(0, a.ElementType, shape);
        switch (a.ElementType)
        {
            case ElementType.Float32:
                Broadcasting.Binary<float, float, float, FloatMod>(context, a, b, output);
                break;
            case ElementType.Float16:
                Broadcasting.Binary<Half, Half, Half, HalfMod>(context, a, b, output);
                break;
            case ElementType.Int64:
                RunInteger<long>(context, a, b, output, fmod);
                break;
            default:
                RunInteger<int>(context, a, b, output, fmod);
                break;
        }
    }

    /// <summary>Checks the types and fmod; the output shape is the broadcast of the operands'.</summary>
    public static int[] InferShape(OperatorContext context, Tensor a, Tensor b, out bool fmod)
    {
        var value = context.Attributes.GetInt("fmod", 0);
        if (value is not (0 or 1)) throw context.Error($"fmod must be 0 or 1, not {value}");
        fmod = value == 1;
        if (a.ElementType != b.ElementType)
            throw context.Error($"A and B must have the same type, not {a.ElementType} and {b.ElementType}");
        switch (a.ElementType)
        {
            case ElementType.Float32 or ElementType.Float16 when !fmod:
                throw context.Error($"fmod must be 1 for {a.ElementType} operands");
            case ElementType.Float32 or ElementType.Float16 or ElementType.Int64 or ElementType.Int32:
                break;
            default:
                throw context.Error($"does not support {a.ElementType} operands (supported: float32, float16, int64, int32)");
        }
        return Broadcasting.Shape(context, a.Shape, b.Shape);
    }

    private static void RunInteger<T>(OperatorContext context, Tensor a, Tensor b, Tensor output, bool fmod)
        where T : unmanaged, IBinaryInteger<T>, ISignedNumber<T>
    {
        if (output.ElementCount > 0 && b.Span<T>().Contains(T.Zero))
            throw context.Error($"integer modulo by zero (divisor {b})");
        if (fmod) Broadcasting.Binary<T, T, T, TruncatedMod<T>>(context, a, b, output);
        else Broadcasting.Binary<T, T, T, FlooredMod<T>>(context, a, b, output);
    }

    private readonly struct FloatMod : Broadcasting.IBinaryOp<float, float, float>
    {
        public static float Apply(float a, float b) => a % b;
    }

    private readonly struct HalfMod : Broadcasting.IBinaryOp<Half, Half, Half>
    {
        public static Half Apply(Half a, Half b) => (Half)((float)a % (float)b);
    }

    /// <summary>Remainder with the dividend's sign; MinValue % -1 is 0 instead of trapping.</summary>
    private readonly struct TruncatedMod<T> : Broadcasting.IBinaryOp<T, T, T> where T : IBinaryInteger<T>, ISignedNumber<T>
    {
        public static T Apply(T a, T b) => b == T.NegativeOne ? T.Zero : a % b;
    }

    /// <summary>Remainder with the divisor's sign.</summary>
    private readonly struct FlooredMod<T> : Broadcasting.IBinaryOp<T, T, T> where T : IBinaryInteger<T>, ISignedNumber<T>
    {
        public static T Apply(T a, T b)
        {
            if (b == T.NegativeOne) return T.Zero;
            var r = a % b;
            return r != T.Zero && (r < T.Zero) != (b < T.Zero) ? r + b : r;
        }
    }
}
