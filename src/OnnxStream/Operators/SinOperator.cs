using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>ONNX Sin: sin(x) elementwise (TensorPrimitives.Sin); float32, and float16 through float32.</summary>
internal sealed class SinOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context) => UnaryElementwise.RunFloat(context, static (x, y) => TensorPrimitives.Sin(x, y));

    /// <summary>Checks the input's type; the output has its shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x) => UnaryElementwise.InferFloatShape(context, x);
}
