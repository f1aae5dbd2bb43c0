using OnnxStream.Interop;
using OnnxStream.Memory;

namespace OnnxStream.Kernels;

/// <summary>
/// The shim's direct convolution as a fully connected layer: float32 rows times a float16 weight [outputs, inputs] used as
/// it is (no packing, no widened copy), for weights streamed from disk a slice of output columns at a time.
/// </summary>
public static unsafe class DirectFullyConnectedKernel
{
    /// <summary>Input channels must be a multiple of this.</summary>
    public const int ChannelAlignment = 16;

    /// <summary>Whether rows of <paramref name="inputChannels"/> are ones this kernel takes.</summary>
    public static bool Supports(int inputChannels) => inputChannels > 0 && inputChannels % ChannelAlignment == 0;

    /// <summary>
    /// output[r, o] = bias[o] + Σ_i input[r, i] · weights[o, i] for r &lt; <paramref name="rows"/>, o &lt; <paramref name="outputs"/>;
    /// input rows start <paramref name="inputStride"/> elements apart, output rows <paramref name="outputStride"/> (so a call may
    /// fill some columns of a wider output). An empty <paramref name="bias"/> is none.
    /// </summary>
    public static void Run(XnnThreadPool pool, int rows, int inputChannels, NativeBuffer<float> input, int inputStride,
        NativeBuffer<Half> weights, int outputs, ReadOnlySpan<float> bias, NativeBuffer<float> output, int outputStride)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outputs, 1);
        if (!Supports(inputChannels))
            throw new ArgumentException($"{inputChannels} input channels are not a positive multiple of {ChannelAlignment}.", nameof(inputChannels));
        ArgumentOutOfRangeException.ThrowIfLessThan(inputStride, inputChannels);
        ArgumentOutOfRangeException.ThrowIfLessThan(outputStride, outputs);
        if (!bias.IsEmpty && bias.Length != outputs)
            throw new ArgumentException($"The bias has {bias.Length} values for {outputs} outputs.", nameof(bias));
        KernelDataTypes.CheckLength(nameof(input), input, (long)(rows - 1) * inputStride + inputChannels);
        KernelDataTypes.CheckLength(nameof(weights), weights, (long)outputs * inputChannels);
        KernelDataTypes.CheckLength(nameof(output), output, (long)(rows - 1) * outputStride + outputs);
        fixed (float* b = bias)
            NativeStatus.Check(NativeMethods.osn_direct_fully_connected_f32_f16w((nuint)rows, (nuint)inputChannels, input.Pointer,
                (nuint)inputStride, (nuint)outputs, (ushort*)weights.Pointer, bias.IsEmpty ? null : b, output.Pointer,
                (nuint)outputStride, pool.Handle));
    }
}
