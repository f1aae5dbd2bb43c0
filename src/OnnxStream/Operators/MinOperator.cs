using System.Numerics;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Min: the elementwise minimum of one or more inputs with broadcasting; float32, float16 (through
/// float32, exact), int64, int32. A NaN operand gives NaN.
/// </summary>
internal sealed class MinOperator : VariadicElementwiseOperator<MinOperator.Minimum>
{
    /// <summary>The smaller of two values (NaN when either is).</summary>
    internal readonly struct Minimum : IVariadicOperation
    {
        public static T Apply<T>(T a, T b) where T : INumber<T> => T.Min(a, b);
    }
}
