using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>ONNX HardSwish: x · max(0, min(1, x/6 + 1/2)); float32, and float16 through float32.</summary>
internal sealed class HardSwishOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context) =>
        UnaryElementwise.RunFloat(context, static (x, y) => HardSigmoidOperator.Compute(x, y, 1f / 6, 0.5f, true));

    /// <summary>Checks the input's type; the output has its shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x) => UnaryElementwise.InferFloatShape(context, x);
}
