using OnnxStream.Interop;
using OnnxStream.Memory;

namespace OnnxStream.Kernels;

/// <summary>Shape of a 2-D pooling window (ONNX MaxPool attributes).</summary>
public sealed record Pooling2dGeometry(
    int PoolingHeight, int PoolingWidth, int StrideHeight = 1, int StrideWidth = 1,
    int DilationHeight = 1, int DilationWidth = 1,
    int PaddingTop = 0, int PaddingLeft = 0, int PaddingBottom = 0, int PaddingRight = 0)
{
    /// <summary>Output height for an input of <paramref name="inputHeight"/> rows (floor mode).</summary>
    public int OutputHeight(int inputHeight) =>
        Math.Max(0, (inputHeight + PaddingTop + PaddingBottom - (DilationHeight * (PoolingHeight - 1) + 1)) / StrideHeight + 1);

    /// <summary>Output width for an input of <paramref name="inputWidth"/> columns (floor mode).</summary>
    public int OutputWidth(int inputWidth) =>
        Math.Max(0, (inputWidth + PaddingLeft + PaddingRight - (DilationWidth * (PoolingWidth - 1) + 1)) / StrideWidth + 1);

    internal OsnPooling2dParams ToNative() => new()
    {
        PaddingTop = (uint)PaddingTop, PaddingRight = (uint)PaddingRight,
        PaddingBottom = (uint)PaddingBottom, PaddingLeft = (uint)PaddingLeft,
        PoolingHeight = (uint)PoolingHeight, PoolingWidth = (uint)PoolingWidth,
        StrideHeight = (uint)StrideHeight, StrideWidth = (uint)StrideWidth,
        DilationHeight = (uint)DilationHeight, DilationWidth = (uint)DilationWidth,
    };
}

/// <summary>Max pooling over NHWC images of float32, float16 or quantized uint8 (same quantization in and out).</summary>
public static unsafe class MaxPooling2dKernel
{
    /// <summary>Pools input [batch, height, width, channels] into output [batch, outH, outW, channels].</summary>
    public static void Run<T>(XnnThreadPool pool, Pooling2dGeometry geometry, int batchSize, int inputHeight, int inputWidth,
        int channels, NativeBuffer<T> input, NativeBuffer<T> output) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(geometry);
        if (geometry.PoolingHeight < 1 || geometry.PoolingWidth < 1 || geometry.StrideHeight < 1 || geometry.StrideWidth < 1 ||
            geometry.DilationHeight < 1 || geometry.DilationWidth < 1 || geometry.PaddingTop < 0 || geometry.PaddingLeft < 0 ||
            geometry.PaddingBottom < 0 || geometry.PaddingRight < 0)
            throw new ArgumentException($"Pooling geometry {geometry} has a non-positive size or negative padding.", nameof(geometry));
        ArgumentOutOfRangeException.ThrowIfNegative(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegative(inputHeight);
        ArgumentOutOfRangeException.ThrowIfNegative(inputWidth);
        ArgumentOutOfRangeException.ThrowIfNegative(channels);
        KernelDataTypes.CheckLength(nameof(input), input, (long)batchSize * inputHeight * inputWidth * channels);
        KernelDataTypes.CheckLength(nameof(output), output,
            (long)batchSize * geometry.OutputHeight(inputHeight) * geometry.OutputWidth(inputWidth) * channels);
        var parameters = geometry.ToNative();
        NativeStatus.Check(NativeMethods.osn_max_pooling2d(KernelDataTypes.Of<T>().ToNative(), &parameters, (nuint)batchSize,
            (nuint)inputHeight, (nuint)inputWidth, (nuint)channels, input.Pointer, output.Pointer, pool.Handle));
    }
}
