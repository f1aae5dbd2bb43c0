using OnnxStream.Kernels;

namespace OnnxStream.Operators;

/// <summary>ONNX Add: a + b with broadcasting.</summary>
internal sealed class AddOperator : BinaryElementwiseOperator
{
    private protected override BinaryOperation Operation => BinaryOperation.Add;
}
