using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Erf: the error function elementwise; float32, and float16 through float32. The approximation
/// is N. Juffa's faithfully rounded erff (maximum error below 1 ulp, i.e. about 1.2e-7 relative, over
/// all floats; the one ONNX Runtime's MLAS uses): for |x| ≤ 0.921875 an odd minimax polynomial, above
/// it 1 − e^−p(|x|) with the sign of x. Vectorized; the exponential is TensorPrimitives.Exp.
/// </summary>
internal sealed class ErfOperator : IOperator
{
    /// <summary>Elements per pass (the exponential's argument buffer lives on the stack).</summary>
    private const int Block = 512;

    private const float Split = 0.921875f;

    // |x| ≤ Split: erf(x) = x + x·s·(S0 + s·(S1 + ...)) with s = x² (coefficients highest power first).
    private const float S0 = -5.99104969e-4f, S1 = 4.99339588e-3f, S2 = -2.67667342e-2f, S3 = 1.12818025e-1f,
        S4 = -3.76124859e-1f, S5 = 1.28379151e-1f;

    // |x| > Split: erf(x) = 1 − e^−p(t), p(t) = t + t·(B0·t⁶ + ... + B6), t = |x|.
    private const float B0 = 1.72948930e-5f, B1 = -3.83208680e-4f, B2 = 3.88393435e-3f, B3 = -2.42545605e-2f,
        B4 = 1.06777847e-1f, B5 = 6.34846687e-1f, B6 = 1.28717512e-1f;

    /// <inheritdoc />
    public void Run(OperatorContext context) => UnaryElementwise.RunFloat(context, Compute);

    /// <summary>Checks the input's type; the output has its shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x) => UnaryElementwise.InferFloatShape(context, x);

    /// <summary>y = erf(x); <paramref name="y"/> may be <paramref name="x"/>.</summary>
    internal static void Compute(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> exponent = stackalloc float[Block];
        for (var start = 0; start < x.Length; start += Block)
        {
            var n = Math.Min(Block, x.Length - start);
            var xs = x.Slice(start, n);
            var ys = y.Slice(start, n);
            var e = exponent[..n];
            // Pass 1: −p(|x|), then e^−p(|x|).
            var i = 0;
            if (Vector.IsHardwareAccelerated)
                for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
                    (-Big(Vector.Abs(new Vector<float>(xs[i..])))).CopyTo(e[i..]);
            for (; i < n; i++) e[i] = -Big(MathF.Abs(xs[i]));
            TensorPrimitives.Exp(e, e);
            // Pass 2: choose the branch per element.
            i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                var split = new Vector<float>(Split);
                var sign = Vector.AsVectorSingle(new Vector<int>(int.MinValue));
                for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var v = new Vector<float>(xs[i..]);
                    var big = Vector.ConditionalSelect(sign, v, Vector<float>.One - new Vector<float>(e[i..]));
                    Vector.ConditionalSelect(Vector.GreaterThan(Vector.Abs(v), split), big, Small(v)).CopyTo(ys[i..]);
                }
            }
            for (; i < n; i++)
            {
                var v = xs[i];
                ys[i] = MathF.Abs(v) > Split ? MathF.CopySign(1 - e[i], v) : Small(v);
            }
        }
    }

    private static float Small(float x)
    {
        var s = x * x;
        var r = S0;
        r = MathF.FusedMultiplyAdd(r, s, S1);
        r = MathF.FusedMultiplyAdd(r, s, S2);
        r = MathF.FusedMultiplyAdd(r, s, S3);
        r = MathF.FusedMultiplyAdd(r, s, S4);
        r = MathF.FusedMultiplyAdd(r, s, S5);
        return MathF.FusedMultiplyAdd(r, x, x);
    }

    private static Vector<float> Small(Vector<float> x)
    {
        var s = x * x;
        var r = new Vector<float>(S0);
        r = Vector.FusedMultiplyAdd(r, s, new Vector<float>(S1));
        r = Vector.FusedMultiplyAdd(r, s, new Vector<float>(S2));
        r = Vector.FusedMultiplyAdd(r, s, new Vector<float>(S3));
        r = Vector.FusedMultiplyAdd(r, s, new Vector<float>(S4));
        r = Vector.FusedMultiplyAdd(r, s, new Vector<float>(S5));
        return Vector.FusedMultiplyAdd(r, x, x);
    }

    private static float Big(float t)
    {
        var r = B0;
        r = MathF.FusedMultiplyAdd(r, t, B1);
        r = MathF.FusedMultiplyAdd(r, t, B2);
        r = MathF.FusedMultiplyAdd(r, t, B3);
        r = MathF.FusedMultiplyAdd(r, t, B4);
        r = MathF.FusedMultiplyAdd(r, t, B5);
        r = MathF.FusedMultiplyAdd(r, t, B6);
        return MathF.FusedMultiplyAdd(r, t, t);
    }

    private static Vector<float> Big(Vector<float> t)
    {
        var r = new Vector<float>(B0);
        r = Vector.FusedMultiplyAdd(r, t, new Vector<float>(B1));
        r = Vector.FusedMultiplyAdd(r, t, new Vector<float>(B2));
        r = Vector.FusedMultiplyAdd(r, t, new Vector<float>(B3));
        r = Vector.FusedMultiplyAdd(r, t, new Vector<float>(B4));
        r = Vector.FusedMultiplyAdd(r, t, new Vector<float>(B5));
        r = Vector.FusedMultiplyAdd(r, t, new Vector<float>(B6));
        return Vector.FusedMultiplyAdd(r, t, t);
    }
}
