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
    /// <exception cref="ArgumentException">XNNPACK cannot compute these rows (see <see cref="SoftmaxQUInt8Fits"/>).</exception>
    public static void SoftmaxQUInt8(XnnThreadPool pool, int rows, int channels, NativeBuffer<byte> input, float inputScale,
        NativeBuffer<byte> output)
    {
        CheckCount((long)rows * channels, input, output);
        if (!SoftmaxQUInt8Fits(rows, channels, input.Span, inputScale))
            throw new ArgumentException($"XNNPACK's uint8 softmax would overflow on these rows (input scale {inputScale}); compute them in float.", nameof(input));
        NativeStatus.Check(NativeMethods.osn_softmax_qu8((nuint)rows, (nuint)channels, input.Pointer, inputScale,
            output.Pointer, Quantization.SoftmaxOutput.ToNative(), pool.Handle));
    }

    /// <summary>
    /// Whether XNNPACK's uint8 softmax computes these rows: it sums each row's entries of an exp table in 32 bits, the
    /// table's top entry round(min((2³²-1) / channels, 2²³-1)) rounds up for some row lengths (every power of two from
    /// 1024), and a row whose values all (or nearly all) equal its maximum then overflows the sum: the process aborts
    /// (assertion <c>vsum != 0</c> in <c>xnn_u8_lut32norm_ukernel</c>) or the row comes out wrong. That happens when the
    /// input's scale is coarse for its values (a wide range such as ±100 over small scores). One vectorized pass per row
    /// counts the elements at its maximum and bounds the sum.
    /// </summary>
    public static bool SoftmaxQUInt8Fits(int rows, int channels, ReadOnlySpan<byte> input, float inputScale)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(input.Length, (long)rows * channels, nameof(input));
        // The table as XNNPACK builds it (lrint: to nearest even).
        var qscale = Math.Min(uint.MaxValue / (double)channels, 8388607.0);
        double top = Math.Round(qscale), next = Math.Round(qscale * Math.Exp(-(double)inputScale));
        if (top * channels <= uint.MaxValue) return true;
        for (var r = 0; r < rows; r++)
        {
            var row = input.Slice(r * channels, channels);
            var max = System.Numerics.Tensors.TensorPrimitives.Max(row);
            long atMax = row.Count(max);
            if (atMax * top + (channels - atMax) * next > uint.MaxValue) return false;
        }
        return true;
    }

    internal static void CheckCount<TIn, TOut>(long count, NativeBuffer<TIn> input, NativeBuffer<TOut> output)
        where TIn : unmanaged where TOut : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        KernelDataTypes.CheckLength(nameof(input), input, count);
        KernelDataTypes.CheckLength(nameof(output), output, count);
    }
}
