using System.Numerics;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Sum: the elementwise sum of one or more inputs with broadcasting; float32, float16 (accumulated in
/// float32, rounded once), int64, int32.
/// </summary>
internal sealed class SumOperator : VariadicElementwiseOperator<SumOperator.Addition>
{
    /// <summary>a + b.</summary>
    internal readonly struct Addition : IVariadicOperation
    {
        public static T Apply<T>(T a, T b) where T : INumber<T> => a + b;
    }
}
