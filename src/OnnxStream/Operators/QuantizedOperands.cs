using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// When operators may run XNNPACK's uint8 kernels (static activation quantization): the operands are
/// quantized uint8, the session gave an <see cref="OperatorContext.OutputQuantization"/>, and the scales are
/// within what the pinned XNNPACK accepts (it refuses others as unsupported).
/// </summary>
internal static class QuantizedOperands
{
    /// <summary>Whether <paramref name="tensor"/> is quantized uint8.</summary>
    public static bool IsQuantized(Tensor tensor) => tensor.ElementType == ElementType.UInt8 && tensor.Quantization is not null;

    /// <summary>
    /// The output quantization of a convolution or fully connected product of <paramref name="input"/> and the
    /// weights <paramref name="weights"/> in uint8, or null when it must run in float: XNNPACK needs
    /// input.scale × weights.scale / output.scale below 256.
    /// </summary>
    public static Quantization? ForProduct(OperatorContext context, Tensor input, Tensor weights) =>
        context.OutputQuantization is { } output && IsQuantized(input) && IsQuantized(weights) &&
        input.Quantization!.Value.Scale * weights.Quantization!.Value.Scale / output.Scale < 256
            ? output
            : null;

    /// <summary>
    /// The output quantization of a uint8 Add, Sub or Mul of <paramref name="a"/> and <paramref name="b"/>, or null
    /// when it must run in float. XNNPACK needs each input scale / output scale in [2⁻¹⁰, 2⁸) for Add and Sub,
    /// and a.scale × b.scale / output scale in [2⁻¹⁶, 2⁸) for Mul.
    /// </summary>
    public static Quantization? ForBinary(OperatorContext context, BinaryOperation operation, Tensor a, Tensor b)
    {
        if (context.OutputQuantization is not { } output || !IsQuantized(a) || !IsQuantized(b) ||
            a.Shape.Length > (int)Interop.OsnLimits.MaxDims || b.Shape.Length > (int)Interop.OsnLimits.MaxDims)
            return null;
        double sa = a.Quantization!.Value.Scale, sb = b.Quantization!.Value.Scale, so = output.Scale;
        static bool Within(double ratio, double low) => ratio >= low && ratio < 256;
        return operation switch
        {
            BinaryOperation.Add or BinaryOperation.Subtract when Within(sa / so, 1.0 / 1024) && Within(sb / so, 1.0 / 1024) => output,
            BinaryOperation.Multiply when Within(sa * sb / so, 1.0 / 65536) => output,
            _ => null,
        };
    }

    /// <summary>
    /// Whether a uint8 kernel whose output encoding is fixed (Sigmoid's and Softmax's scale 1/256) may run: the session
    /// asked for a quantized output and the fixed encoding is at most twice as coarse as the calibrated one. A softmax
    /// over long rows (attention) has small probabilities, a fine calibrated scale, and keeps its precision in float.
    /// </summary>
    public static bool AllowsFixedOutput(OperatorContext context, Tensor input, Quantization fixedOutput) =>
        IsQuantized(input) && context.OutputQuantization is { } output && fixedOutput.Scale <= 2 * output.Scale;

    /// <summary>
    /// A float bias (float32, float16 or quantized uint8) as the int32 XNNPACK's uint8 products add, in units of
    /// <paramref name="scale"/> (input scale × weight scale), rounded and saturated; null for no bias. The caller disposes it.
    /// </summary>
    public static Tensor? Bias(OperatorContext context, Tensor? bias, double scale)
    {
        if (bias is null) return null;
        var values = Layout.ToFloat32(context, bias, "B", out var owned);
        try
        {
            var result = context.Scratch(ElementType.Int32, [values.ElementCount]);
            var source = values.Span<float>();
            var target = result.Span<int>();
            for (var i = 0; i < source.Length; i++)
                target[i] = (int)Math.Clamp(Math.Round(source[i] / scale), int.MinValue, int.MaxValue);
            return result;
        }
        finally
        {
            if (owned) values.Dispose();
        }
    }
}
