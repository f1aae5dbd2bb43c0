using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Gelu (opset 20, default domain): approximate="none" (default) y = x·½·(1 + erf(x/√2)), with
/// <see cref="ErfOperator"/>'s erf; approximate="tanh" y = x·½·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
/// float32, and float16 through float32. Not the com.microsoft Gelu/FastGelu contrib operators (their
/// op types differ in domain only; a model exported with them needs a different implementation).
/// </summary>
internal sealed class GeluOperator : IOperator
{
    /// <summary>Elements per pass (the intermediate lives on the stack).</summary>
    private const int Block = 512;

    private const float InverseSqrt2 = 0.70710678118654752f;
    private const float Sqrt2OverPi = 0.79788456080286536f;
    private const float Cubic = 0.044715f;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var tanh = InferApproximation(context);
        UnaryElementwise.RunFloat(context, tanh ? ComputeTanh : Compute);
    }

    /// <summary>Checks the input's type; the output has its shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x) => UnaryElementwise.InferFloatShape(context, x);

    /// <summary>Reads <c>approximate</c>: true for "tanh", false for "none".</summary>
    internal static bool InferApproximation(OperatorContext context) =>
        context.Attributes.GetString("approximate", "none") switch
        {
            "none" => false,
            "tanh" => true,
            var other => throw context.Error($"approximate must be \"none\" or \"tanh\", not \"{other}\""),
        };

    /// <summary>The erf form; <paramref name="y"/> may be <paramref name="x"/>.</summary>
    internal static void Compute(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> buffer = stackalloc float[Block];
        for (var start = 0; start < x.Length; start += Block)
        {
            var n = Math.Min(Block, x.Length - start);
            var xs = x.Slice(start, n);
            var ys = y.Slice(start, n);
            var t = buffer[..n];
            TensorPrimitives.Multiply(xs, InverseSqrt2, t);
            ErfOperator.Compute(t, t);
            Finish(xs, t, ys);
        }
    }

    /// <summary>The tanh form; <paramref name="y"/> may be <paramref name="x"/>.</summary>
    internal static void ComputeTanh(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> buffer = stackalloc float[Block];
        for (var start = 0; start < x.Length; start += Block)
        {
            var n = Math.Min(Block, x.Length - start);
            var xs = x.Slice(start, n);
            var ys = y.Slice(start, n);
            var t = buffer[..n];
            // t = √(2/π)·x·(1 + 0.044715·x²)
            TensorPrimitives.Multiply(xs, xs, t);
            TensorPrimitives.Multiply(t, Cubic, t);
            TensorPrimitives.Add(t, 1f, t);
            TensorPrimitives.Multiply(t, xs, t);
            TensorPrimitives.Multiply(t, Sqrt2OverPi, t);
            TensorPrimitives.Tanh(t, t);
            Finish(xs, t, ys);
        }
    }

    /// <summary>y = ½·x·(1 + t), reading x before writing y (they may overlap exactly).</summary>
    private static void Finish(ReadOnlySpan<float> x, Span<float> t, Span<float> y)
    {
        TensorPrimitives.Add(t, 1f, t);
        TensorPrimitives.Multiply(t, 0.5f, t);
        TensorPrimitives.Multiply(x, t, y);
    }
}
