using OnnxStream.Interop;
using OnnxStream.Memory;

namespace OnnxStream.Kernels;

/// <summary>
/// Shape of a 2-D convolution (ONNX Conv attributes in XNNPACK's terms). <paramref name="InputPixelStride"/> and
/// <paramref name="OutputPixelStride"/>: elements from one pixel to the next in the NHWC input and output, 0 for
/// dense (the channel count); a wider output stride lets a convolution computing some output channels write them
/// in place into an image of more channels.
/// </summary>
public sealed record Convolution2dGeometry(
    int KernelHeight, int KernelWidth, int GroupInputChannels, int GroupOutputChannels, int Groups = 1,
    int StrideHeight = 1, int StrideWidth = 1, int DilationHeight = 1, int DilationWidth = 1,
    int PaddingTop = 0, int PaddingLeft = 0, int PaddingBottom = 0, int PaddingRight = 0,
    int InputPixelStride = 0, int OutputPixelStride = 0)
{
    /// <summary>Channels of the NHWC input.</summary>
    public int InputChannels => Groups * GroupInputChannels;

    /// <summary>Channels of the NHWC output.</summary>
    public int OutputChannels => Groups * GroupOutputChannels;

    /// <summary>Elements from one input pixel to the next.</summary>
    public int InputStride => InputPixelStride != 0 ? InputPixelStride : InputChannels;

    /// <summary>Elements from one output pixel to the next.</summary>
    public int OutputStride => OutputPixelStride != 0 ? OutputPixelStride : OutputChannels;

    /// <summary>Elements of the OHWI kernel.</summary>
    public long KernelLength => (long)OutputChannels * KernelHeight * KernelWidth * GroupInputChannels;

    /// <summary>Output height for an input of <paramref name="inputHeight"/> rows.</summary>
    public int OutputHeight(int inputHeight) =>
        OutputSize(inputHeight + PaddingTop + PaddingBottom, KernelHeight, DilationHeight, StrideHeight);

    /// <summary>Output width for an input of <paramref name="inputWidth"/> columns.</summary>
    public int OutputWidth(int inputWidth) =>
        OutputSize(inputWidth + PaddingLeft + PaddingRight, KernelWidth, DilationWidth, StrideWidth);

    private static int OutputSize(int padded, int kernel, int dilation, int stride) =>
        Math.Max(0, (padded - (dilation * (kernel - 1) + 1)) / stride + 1);

    internal OsnConvolution2dParams ToNative() => new()
    {
        PaddingTop = (uint)PaddingTop, PaddingRight = (uint)PaddingRight,
        PaddingBottom = (uint)PaddingBottom, PaddingLeft = (uint)PaddingLeft,
        KernelHeight = (uint)KernelHeight, KernelWidth = (uint)KernelWidth,
        StrideHeight = (uint)StrideHeight, StrideWidth = (uint)StrideWidth,
        DilationHeight = (uint)DilationHeight, DilationWidth = (uint)DilationWidth,
        Groups = (uint)Groups, GroupInputChannels = (nuint)GroupInputChannels, GroupOutputChannels = (nuint)GroupOutputChannels,
        InputPixelStride = (nuint)InputPixelStride, OutputPixelStride = (nuint)OutputPixelStride,
    };
}

/// <summary>
/// 2-D convolution over NHWC images with an OHWI kernel ([outputChannels, kH, kW, groupInputChannels]),
/// packed once at creation.
/// </summary>
public sealed unsafe class Convolution2dOperator : PreparedOperator
{
    private Convolution2dOperator(OsnOperatorHandle handle, KernelDataType type, Convolution2dGeometry geometry)
        : base(handle, type) => Geometry = geometry;

    /// <summary>The convolution's shape.</summary>
    public Convolution2dGeometry Geometry { get; }

    /// <summary>Packs a float32 kernel (and an optional bias) into a float32 operator.</summary>
    public static Convolution2dOperator CreateFloat32(Convolution2dGeometry geometry, ReadOnlySpan<float> kernel,
        ReadOnlySpan<float> bias = default, float outputMin = float.NegativeInfinity, float outputMax = float.PositiveInfinity)
    {
        var parameters = Check(geometry, kernel.Length, bias.Length);
        fixed (float* k = kernel)
        fixed (float* b = bias)
        {
            NativeStatus.Check(NativeMethods.osn_convolution2d_create_f32(&parameters, k, b, outputMin, outputMax, out var handle));
            return new Convolution2dOperator(handle, KernelDataType.Float32, geometry);
        }
    }

    /// <summary>Packs a float16 kernel (and an optional bias) into a float16 operator (needs f16 hardware).</summary>
    public static Convolution2dOperator CreateFloat16(Convolution2dGeometry geometry, ReadOnlySpan<Half> kernel,
        ReadOnlySpan<Half> bias = default, float outputMin = float.NegativeInfinity, float outputMax = float.PositiveInfinity)
    {
        var parameters = Check(geometry, kernel.Length, bias.Length);
        fixed (Half* k = kernel)
        fixed (Half* b = bias)
        {
            NativeStatus.Check(NativeMethods.osn_convolution2d_create_f16(&parameters, (ushort*)k, (ushort*)b, outputMin, outputMax, out var handle));
            return new Convolution2dOperator(handle, KernelDataType.Float16, geometry);
        }
    }

    /// <summary>Packs a uint8 kernel into a quantized operator; bias is int32 in units of input.Scale × kernelQuantization.Scale.</summary>
    public static Convolution2dOperator CreateQUInt8(Convolution2dGeometry geometry, Quantization input,
        Quantization kernelQuantization, ReadOnlySpan<byte> kernel, ReadOnlySpan<int> bias, Quantization output)
    {
        var parameters = Check(geometry, kernel.Length, bias.Length);
        fixed (byte* k = kernel)
        fixed (int* b = bias)
        {
            NativeStatus.Check(NativeMethods.osn_convolution2d_create_qu8(&parameters, input.ToNative(),
                kernelQuantization.ToNative(), k, b, output.ToNative(), out var handle));
            return new Convolution2dOperator(handle, KernelDataType.QUInt8, geometry);
        }
    }

    /// <summary>
    /// Convolves input [batch, height, width, InputChannels] into output [batch, outH, outW, OutputChannels] (pixels
    /// <see cref="Convolution2dGeometry.InputStride"/> and <see cref="Convolution2dGeometry.OutputStride"/> elements apart).
    /// </summary>
    public void Run<T>(XnnThreadPool pool, int batchSize, int inputHeight, int inputWidth,
        NativeBuffer<T> input, NativeBuffer<T> output) where T : unmanaged
    {
        CheckElementType<T>();
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(inputHeight, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(inputWidth, 1);
        KernelDataTypes.CheckLength(nameof(input), input,
            ((long)batchSize * inputHeight * inputWidth - 1) * Geometry.InputStride + Geometry.InputChannels);
        KernelDataTypes.CheckLength(nameof(output), output,
            ((long)batchSize * Geometry.OutputHeight(inputHeight) * Geometry.OutputWidth(inputWidth) - 1) * Geometry.OutputStride + Geometry.OutputChannels);
        lock (RunLock)
            NativeStatus.Check(NativeMethods.osn_convolution2d_run(Handle, (nuint)batchSize, (nuint)inputHeight,
                (nuint)inputWidth, input.Pointer, output.Pointer, pool.Handle));
    }

    private static OsnConvolution2dParams Check(Convolution2dGeometry geometry, int kernel, int bias)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        if (kernel != geometry.KernelLength)
            throw new ArgumentException($"Convolution {geometry} needs {geometry.KernelLength} kernel values, got {kernel}.", nameof(kernel));
        if (bias != 0 && bias != geometry.OutputChannels)
            throw new ArgumentException($"Convolution bias must be empty or hold {geometry.OutputChannels} values, got {bias}.", nameof(bias));
        if (geometry.KernelHeight < 1 || geometry.KernelWidth < 1 || geometry.Groups < 1 || geometry.GroupInputChannels < 1 ||
            geometry.GroupOutputChannels < 1 || geometry.StrideHeight < 1 || geometry.StrideWidth < 1 ||
            geometry.DilationHeight < 1 || geometry.DilationWidth < 1 || geometry.PaddingTop < 0 || geometry.PaddingLeft < 0 ||
            geometry.PaddingBottom < 0 || geometry.PaddingRight < 0)
            throw new ArgumentException($"Convolution geometry {geometry} has a non-positive size or negative padding.", nameof(geometry));
        if (geometry.InputStride < geometry.InputChannels || geometry.OutputStride < geometry.OutputChannels)
            throw new ArgumentException($"Convolution geometry {geometry} has a pixel stride below its channel count.", nameof(geometry));
        return geometry.ToNative();
    }
}
