using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>ONNX Sigmoid: 1 / (1 + e^-x) elementwise, by XNNPACK; float32, and float16 through float32.</summary>
internal sealed class SigmoidOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var shape = InferShape(context, x);
        var output = context.Output(0, x.ElementType, shape);
        if (output.ElementCount == 0) return;
        if (x.ElementType == ElementType.Float32)
        {
            ActivationKernels.Sigmoid(context.Pool, x.ElementCount, x.Buffer<float>(), output.Buffer<float>());
            return;
        }
        using var xf = Layout.ToFloat32(context, x, "X", out _);
        ActivationKernels.Sigmoid(context.Pool, xf.ElementCount, xf.Buffer<float>(), xf.Buffer<float>());
        Layout.FromFloat32(context, xf, output);
    }

    /// <summary>Checks the input's type; the output has its shape.</summary>
    internal static int[] InferShape(OperatorContext context, Tensor x)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16))
            throw context.Error($"X must be float32 or float16, not {x.ElementType}");
        return (int[])x.Shape.Clone();
    }
}
