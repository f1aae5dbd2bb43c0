using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Softplus: ln(1 + e^x), computed stably as max(x, 0) + ln(1 + e^-|x|) in double precision;
/// float32, and float16 through float32.
/// </summary>
internal sealed class SoftplusOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context) => UnaryElementwise.RunFloat(context, static (x, y) =>
    {
        for (var i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(Math.Max(v, 0) + LogOnePlus(Math.Exp(-Math.Abs(v))));
        }
    });

    /// <summary>ln(1 + u), accurate for tiny u (Kahan's trick; double.LogP1 is ln(u + 1) as written).</summary>
    private static double LogOnePlus(double u)
    {
        var w = 1 + u;
        return w == 1 ? u : Math.Log(w) * u / (w - 1);
    }

    /// <summary>Checks the input's type; the output has its shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x) => UnaryElementwise.InferFloatShape(context, x);
}
