using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>ONNX LeakyRelu: x for x ≥ 0, alpha·x below (alpha default 0.01); float32, and float16 through float32.</summary>
internal sealed class LeakyReluOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var alpha = context.Attributes.GetFloat("alpha", 0.01f);
        UnaryElementwise.RunFloat(context, (x, y) => Compute(x, y, alpha));
    }

    /// <summary>Checks the input's type; the output has its shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x) => UnaryElementwise.InferFloatShape(context, x);

    private static void Compute(ReadOnlySpan<float> x, Span<float> y, float alpha)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var a = new Vector<float>(alpha);
            for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(x[i..]);
                Vector.ConditionalSelect(Vector.LessThan(v, Vector<float>.Zero), v * a, v).CopyTo(y[i..]);
            }
        }
        for (; i < x.Length; i++) y[i] = x[i] < 0 ? alpha * x[i] : x[i];
    }
}
