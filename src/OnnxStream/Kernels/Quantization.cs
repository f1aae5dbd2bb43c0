using OnnxStream.Interop;

namespace OnnxStream.Kernels;

/// <summary>Asymmetric uint8 quantization: real = (q - <see cref="ZeroPoint"/>) × <see cref="Scale"/>.</summary>
public readonly record struct Quantization(float Scale, byte ZeroPoint)
{
    /// <summary>The encoding of a quantized softmax's output, fixed by XNNPACK: scale 1/256, zero point 0.</summary>
    public static Quantization SoftmaxOutput { get; } = new(1f / 256, 0);

    /// <summary>The encoding of a quantized sigmoid's output, fixed by XNNPACK as softmax's is: scale 1/256, zero point 0.</summary>
    public static Quantization SigmoidOutput => SoftmaxOutput;

    /// <summary>Quantizes one value (round to nearest even, saturating).</summary>
    public byte Quantize(float value) => (byte)Math.Clamp(MathF.Round(value / Scale) + ZeroPoint, 0, 255);

    /// <summary>The real value of <paramref name="q"/>.</summary>
    public float Dequantize(byte q) => (q - ZeroPoint) * Scale;

    /// <summary>
    /// The original OnnxStream's encoding of the range [<paramref name="min"/>, <paramref name="max"/>] (weights and
    /// activations alike): the range widened to include 0, scale = (max - min) / 255, zero point = trunc(|min| / scale),
    /// at most 255. Null when the widened range is empty, not finite, or so narrow that the scale is not a normal float
    /// (nothing to encode; the tensor stays float).
    /// </summary>
    public static Quantization? FromRange(float min, float max) =>
        TryEncodeRange(min, max, out var scale, out var zeroPoint) ? new Quantization((float)scale, (byte)zeroPoint) : null;

    /// <summary><see cref="FromRange"/> in doubles (the converter writes the scale as Python prints the double).</summary>
    internal static bool TryEncodeRange(double min, double max, out double scale, out int zeroPoint)
    {
        if (min > 0 && max > 0) min = 0;
        else if (min < 0 && max < 0) max = 0;
        scale = (max - min) / 255.0;
        zeroPoint = 0;
        // XNNPACK refuses a scale that is not a normal float (a range narrower than about 3e-36).
        if (!(max > min) || !float.IsNormal((float)scale)) return false;
        zeroPoint = (int)Math.Min((long)(Math.Abs(min) / scale), 255);
        return true;
    }

    internal OsnQuantization ToNative() => new() { Scale = Scale, ZeroPoint = ZeroPoint };
}
