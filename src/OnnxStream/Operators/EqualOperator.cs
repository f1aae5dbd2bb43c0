using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Equal: a == b elementwise with broadcasting, as a bool tensor; operands of one type: float32,
/// float16, int64, int32, uint8, bool.
/// </summary>
internal sealed class EqualOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context) => Broadcasting.Compare<Comparison>(context, allowBool: true);

    /// <summary>The output shape: the broadcast of the operands'.</summary>
    public static int[] InferShape(OperatorContext context, Tensor a, Tensor b) => Broadcasting.CompareShape(context, a, b, allowBool: true);

    private readonly struct Comparison : Broadcasting.IComparison
    {
        public static bool Apply<T>(T a, T b) where T : IComparisonOperators<T, T, bool> => a == b;
    }
}
