using OnnxStream.Interop;
using OnnxStream.Memory;

namespace OnnxStream.Kernels;

/// <summary>
/// The shim's direct convolution: float32 NCHW images, a float16 OHWI kernel used as it is (no packing, no widened
/// copy), float32 NCHW output. The input is first copied, zero-padded, into a prepared buffer
/// (<see cref="PrepareInput"/>); then <see cref="Run"/> computes any range of output channels from their kernel rows,
/// so a kernel streamed from disk is used a block of rows at a time. Groups of 1 only, at most
/// <see cref="MaxTaps"/> kernel taps.
/// </summary>
public static unsafe class DirectConvolutionKernel
{
    /// <summary>The most kernel taps (kernel height × width) the kernel takes.</summary>
    public const int MaxTaps = 80;

    /// <summary>Whether <paramref name="geometry"/> is one this kernel computes.</summary>
    public static bool Supports(Convolution2dGeometry geometry) =>
        geometry.Groups == 1 && geometry.KernelHeight * geometry.KernelWidth <= MaxTaps &&
        geometry.InputPixelStride == 0 && geometry.OutputPixelStride == 0;

    /// <summary>Elements of the prepared input of <paramref name="batch"/> images of <paramref name="height"/> × <paramref name="width"/>.</summary>
    public static long PreparedInputLength(Convolution2dGeometry geometry, int batch, int height, int width)
    {
        var parameters = geometry.ToNative();
        nuint elements;
        NativeStatus.Check(NativeMethods.osn_direct_convolution_input_size(&parameters, (nuint)batch, (nuint)height, (nuint)width, &elements));
        return (long)elements;
    }

    /// <summary>
    /// Copies the NCHW <paramref name="input"/> [batch, InputChannels, height, width] (float or Half, widened) into
    /// <paramref name="prepared"/>, zero-padded.
    /// </summary>
    public static void PrepareInput<T>(XnnThreadPool pool, Convolution2dGeometry geometry, int batch, int height, int width,
        NativeBuffer<T> input, NativeBuffer<float> prepared) where T : unmanaged
    {
        KernelDataTypes.CheckLength(nameof(input), input, (long)batch * geometry.InputChannels * height * width);
        KernelDataTypes.CheckLength(nameof(prepared), prepared, PreparedInputLength(geometry, batch, height, width));
        var parameters = geometry.ToNative();
        if (typeof(T) == typeof(Half))
            NativeStatus.Check(NativeMethods.osn_direct_convolution_prepare_input_f16(&parameters, (nuint)batch, (nuint)height,
                (nuint)width, (ushort*)input.Pointer, prepared.Pointer, pool.Handle));
        else if (typeof(T) == typeof(float))
            NativeStatus.Check(NativeMethods.osn_direct_convolution_prepare_input_f32(&parameters, (nuint)batch, (nuint)height,
                (nuint)width, (float*)input.Pointer, prepared.Pointer, pool.Handle));
        else throw new NotSupportedException($"The direct convolution takes float or Half images, not {typeof(T).Name}.");
    }

    /// <summary>
    /// Computes output channels <paramref name="outputOffset"/>.. (<paramref name="outputs"/> of them) of the NCHW
    /// <paramref name="output"/> [batch, OutputChannels, outH, outW] from the prepared input, those channels' OHWI kernel
    /// rows <paramref name="kernel"/> [outputs, kH, kW, InputChannels] and their <paramref name="bias"/> (empty: none).
    /// </summary>
    public static void Run(XnnThreadPool pool, Convolution2dGeometry geometry, int batch, int height, int width,
        NativeBuffer<float> prepared, int outputOffset, int outputs, NativeBuffer<Half> kernel, ReadOnlySpan<float> bias,
        NativeBuffer<float> output)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(outputs, 1);
        if (!bias.IsEmpty && bias.Length != outputs)
            throw new ArgumentException($"The bias has {bias.Length} values for {outputs} output channels.", nameof(bias));
        KernelDataTypes.CheckLength(nameof(prepared), prepared, PreparedInputLength(geometry, batch, height, width));
        KernelDataTypes.CheckLength(nameof(kernel), kernel, (long)outputs * geometry.KernelHeight * geometry.KernelWidth * geometry.InputChannels);
        KernelDataTypes.CheckLength(nameof(output), output,
            (long)batch * geometry.OutputChannels * geometry.OutputHeight(height) * geometry.OutputWidth(width));
        var parameters = geometry.ToNative();
        fixed (float* b = bias)
            NativeStatus.Check(NativeMethods.osn_direct_convolution_f32_f16w(&parameters, (nuint)batch, (nuint)height, (nuint)width,
                prepared.Pointer, (nuint)outputOffset, (nuint)outputs, (ushort*)kernel.Pointer, bias.IsEmpty ? null : b, output.Pointer,
                pool.Handle));
    }
}
