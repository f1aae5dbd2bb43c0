using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>ONNX Identity: a copy of the input (any element type; a quantized input keeps its quantization).</summary>
internal sealed class IdentityOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var output = context.Output(0, x.ElementType, InferShape(x), x.Quantization);
        AxisHelper.CopyAll(context, x, output);
    }

    /// <summary>The output has the input's shape.</summary>
    public static int[] InferShape(Tensor x) => (int[])x.Shape.Clone();
}
