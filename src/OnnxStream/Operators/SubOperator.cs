using OnnxStream.Kernels;

namespace OnnxStream.Operators;

/// <summary>ONNX Sub: a - b with broadcasting.</summary>
internal sealed class SubOperator : BinaryElementwiseOperator
{
    private protected override BinaryOperation Operation => BinaryOperation.Subtract;
}
