using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Sigmoid: 1 / (1 + e^-x) elementwise, by XNNPACK; float32, and float16 through float32. Under static activation
/// quantization a quantized X runs XNNPACK's uint8 sigmoid when its fixed output encoding (scale 1/256, zero point 0) suits
/// the output (<see cref="QuantizedOperands.AllowsFixedOutput"/>); otherwise X is dequantized.
/// </summary>
internal sealed class SigmoidOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var shape = InferShape(context, x);
        if (QuantizedOperands.IsQuantized(x))
        {
            if (QuantizedOperands.AllowsFixedOutput(context, x, Quantization.SigmoidOutput))
            {
                var quantized = context.Output(0, ElementType.UInt8, shape, Quantization.SigmoidOutput);
                ActivationKernels.SigmoidQUInt8(context.Pool, x.ElementCount, x.Buffer<byte>(), x.Quantization!.Value,
                    quantized.Buffer<byte>(), Quantization.SigmoidOutput);
                return;
            }
            using var dequantized = Layout.ToFloat32(context, x, "X", out _);
            ActivationKernels.Sigmoid(context.Pool, x.ElementCount, dequantized.Buffer<float>(),
                context.Output(0, ElementType.Float32, shape).Buffer<float>());
            return;
        }
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

    /// <inheritdoc />
    public bool TakesQuantized(int index) => true;

    /// <inheritdoc />
    public bool WritesOverInput(int index) => index == 0;

    /// <summary>Checks the input's type; the output has its shape.</summary>
    internal static int[] InferShape(OperatorContext context, Tensor x)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16) && !QuantizedOperands.IsQuantized(x))
            throw context.Error($"X must be float32 or float16, not {x.ElementType}");
        return (int[])x.Shape.Clone();
    }
}
