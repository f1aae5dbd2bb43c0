using OnnxStream.Kernels;

namespace OnnxStream.Operators;

/// <summary>ONNX Div: a ÷ b (integers truncate toward zero) with broadcasting.</summary>
internal sealed class DivOperator : BinaryElementwiseOperator
{
    private protected override BinaryOperation Operation => BinaryOperation.Divide;
}
