using OnnxStream.Interop;
using OnnxStream.Memory;

namespace OnnxStream.Kernels;

/// <summary>Sigmoid over a whole buffer, and Softmax over the innermost axis.</summary>
public static unsafe class ActivationKernels
{
    /// <summary>output[i] = 1 / (1 + e^-input[i]) for the first <paramref name="count"/> elements.</summary>
    public static void Sigmoid(XnnThreadPool pool, int count, NativeBuffer<float> input, NativeBuffer<float> output)
    {
        CheckCount(count, input, output);
        NativeStatus.Check(NativeMethods.osn_sigmoid_f32((nuint)count, input.Pointer, output.Pointer, pool.Handle));
    }

    /// <summary>Quantized sigmoid: input and output each have their own quantization.</summary>
    public static void SigmoidQUInt8(XnnThreadPool pool, int count, NativeBuffer<byte> input, Quantization inputQuantization,
        NativeBuffer<byte> output, Quantization outputQuantization)
    {
        CheckCount(count, input, output);
        NativeStatus.Check(NativeMethods.osn_sigmoid_qu8((nuint)count, input.Pointer, inputQuantization.ToNative(),
            output.Pointer, outputQuantization.ToNative(), pool.Handle));
    }

    /// <summary>Softmax of each of <paramref name="rows"/> rows of <paramref name="channels"/> values.</summary>
    public static void Softmax(XnnThreadPool pool, int rows, int channels, NativeBuffer<float> input, NativeBuffer<float> output)
    {
        CheckCount((long)rows * channels, input, output);
        NativeStatus.Check(NativeMethods.osn_softmax_f32((nuint)rows, (nuint)channels, input.Pointer, output.Pointer, pool.Handle));
    }

    /// <summary>Quantized softmax; the output is encoded as <see cref="Quantization.SoftmaxOutput"/>.</summary>
    public static void SoftmaxQUInt8(XnnThreadPool pool, int rows, int channels, NativeBuffer<byte> input, float inputScale,
        NativeBuffer<byte> output)
    {
        CheckCount((long)rows * channels, input, output);
        NativeStatus.Check(NativeMethods.osn_softmax_qu8((nuint)rows, (nuint)channels, input.Pointer, inputScale,
            output.Pointer, Quantization.SoftmaxOutput.ToNative(), pool.Handle));
    }

    internal static void CheckCount<TIn, TOut>(long count, NativeBuffer<TIn> input, NativeBuffer<TOut> output)
        where TIn : unmanaged where TOut : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        KernelDataTypes.CheckLength(nameof(input), input, count);
        KernelDataTypes.CheckLength(nameof(output), output, count);
    }
}
