using OnnxStream.Interop;

namespace OnnxStream.Kernels;

/// <summary>Asymmetric uint8 quantization: real = (q - <see cref="ZeroPoint"/>) × <see cref="Scale"/>.</summary>
public readonly record struct Quantization(float Scale, byte ZeroPoint)
{
    /// <summary>The encoding of a quantized softmax's output, fixed by XNNPACK: scale 1/256, zero point 0.</summary>
    public static Quantization SoftmaxOutput { get; } = new(1f / 256, 0);

    /// <summary>Quantizes one value (round to nearest even, saturating).</summary>
    public byte Quantize(float value) => (byte)Math.Clamp(MathF.Round(value / Scale) + ZeroPoint, 0, 255);

    /// <summary>The real value of <paramref name="q"/>.</summary>
    public float Dequantize(byte q) => (q - ZeroPoint) * Scale;

    internal OsnQuantization ToNative() => new() { Scale = Scale, ZeroPoint = ZeroPoint };
}
