using OnnxStream.Interop;
using OnnxStream.Memory;

namespace OnnxStream.Kernels;

/// <summary>Element type conversions: float32 ↔ float16 and float32 ↔ quantized uint8.</summary>
public static unsafe class ConversionKernels
{
    /// <summary>Rounds the first <paramref name="count"/> floats to float16.</summary>
    public static void ToFloat16(XnnThreadPool pool, int count, NativeBuffer<float> input, NativeBuffer<Half> output)
    {
        ActivationKernels.CheckCount(count, input, output);
        NativeStatus.Check(NativeMethods.osn_convert_f32_to_f16((nuint)count, input.Pointer, (ushort*)output.Pointer, pool.Handle));
    }

    /// <summary>Widens the first <paramref name="count"/> float16 values to float32.</summary>
    public static void ToFloat32(XnnThreadPool pool, int count, NativeBuffer<Half> input, NativeBuffer<float> output)
    {
        ActivationKernels.CheckCount(count, input, output);
        NativeStatus.Check(NativeMethods.osn_convert_f16_to_f32((nuint)count, (ushort*)input.Pointer, output.Pointer, pool.Handle));
    }

    /// <summary>Quantizes the first <paramref name="count"/> floats (round to nearest, saturating).</summary>
    public static void Quantize(XnnThreadPool pool, int count, NativeBuffer<float> input, NativeBuffer<byte> output,
        Quantization quantization)
    {
        ActivationKernels.CheckCount(count, input, output);
        NativeStatus.Check(NativeMethods.osn_convert_f32_to_qu8((nuint)count, input.Pointer, output.Pointer,
            quantization.ToNative(), pool.Handle));
    }

    /// <summary>Dequantizes the first <paramref name="count"/> bytes.</summary>
    public static void Dequantize(XnnThreadPool pool, int count, NativeBuffer<byte> input, Quantization quantization,
        NativeBuffer<float> output)
    {
        ActivationKernels.CheckCount(count, input, output);
        NativeStatus.Check(NativeMethods.osn_convert_qu8_to_f32((nuint)count, input.Pointer, quantization.ToNative(),
            output.Pointer, pool.Handle));
    }
}
