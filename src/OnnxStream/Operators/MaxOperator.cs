using System.Numerics;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Max: the elementwise maximum of one or more inputs with broadcasting; float32, float16 (through
/// float32, exact), int64, int32. A NaN operand gives NaN.
/// </summary>
internal sealed class MaxOperator : VariadicElementwiseOperator<MaxOperator.Maximum>
{
    /// <summary>The larger of two values (NaN when either is).</summary>
    internal readonly struct Maximum : IVariadicOperation
    {
        public static T Apply<T>(T a, T b) where T : INumber<T> => T.Max(a, b);
    }
}
