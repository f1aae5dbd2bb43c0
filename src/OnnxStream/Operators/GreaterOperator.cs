using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Greater: a &gt; b elementwise with broadcasting, as a bool tensor; operands of one type: float32,
/// float16, int64, int32, uint8.
/// </summary>
internal sealed class GreaterOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context) => Broadcasting.Compare<Comparison>(context, allowBool: false);

    /// <summary>The output shape: the broadcast of the operands'.</summary>
    public static int[] InferShape(OperatorContext context, Tensor a, Tensor b) => Broadcasting.CompareShape(context, a, b, allowBool: false);

    private readonly struct Comparison : Broadcasting.IComparison
    {
        public static bool Apply<T>(T a, T b) where T : IComparisonOperators<T, T, bool> => a > b;
    }
}
