using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX HardSigmoid: max(0, min(1, alpha·x + beta)) (alpha default 0.2, beta 0.5); float32, and
/// float16 through float32.
/// </summary>
internal sealed class HardSigmoidOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var alpha = context.Attributes.GetFloat("alpha", 0.2f);
        var beta = context.Attributes.GetFloat("beta", 0.5f);
        UnaryElementwise.RunFloat(context, (x, y) => Compute(x, y, alpha, beta, false));
    }

    /// <summary>Checks the input's type; the output has its shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x) => UnaryElementwise.InferFloatShape(context, x);

    /// <summary>y = max(0, min(1, alpha·x + beta)), times x when <paramref name="timesX"/> (HardSwish).</summary>
    internal static void Compute(ReadOnlySpan<float> x, Span<float> y, float alpha, float beta, bool timesX)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var a = new Vector<float>(alpha);
            var b = new Vector<float>(beta);
            for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(x[i..]);
                var h = Vector.Max(Vector<float>.Zero, Vector.Min(Vector<float>.One, v * a + b));
                (timesX ? h * v : h).CopyTo(y[i..]);
            }
        }
        for (; i < x.Length; i++)
        {
            var v = x[i];
            var h = MathF.Max(0, MathF.Min(1, alpha * v + beta));
            y[i] = timesX ? h * v : h;
        }
    }
}
