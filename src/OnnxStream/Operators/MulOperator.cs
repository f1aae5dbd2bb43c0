using OnnxStream.Kernels;

namespace OnnxStream.Operators;

/// <summary>ONNX Mul: a × b with broadcasting.</summary>
internal sealed class MulOperator : BinaryElementwiseOperator
{
    private protected override BinaryOperation Operation => BinaryOperation.Multiply;
}
