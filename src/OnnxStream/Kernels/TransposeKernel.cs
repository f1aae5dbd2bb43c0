using OnnxStream.Interop;
using OnnxStream.Memory;

namespace OnnxStream.Kernels;

/// <summary>Batched matrix transposes (NCHW ↔ NHWC, OIHW → OHWI) of 1-, 2-, 4- or 8-byte elements, in native tiles.</summary>
public static unsafe class TransposeKernel
{
    /// <summary>
    /// For each of <paramref name="batch"/> matrices of <paramref name="rows"/> × <paramref name="cols"/> elements, its
    /// transpose (<paramref name="cols"/> × <paramref name="rows"/>) into <paramref name="output"/>.
    /// </summary>
    public static void Run<T>(XnnThreadPool pool, int batch, int rows, int cols, NativeBuffer<T> input, NativeBuffer<T> output)
        where T : unmanaged
    {
        var count = CheckShape(batch, rows, cols);
        KernelDataTypes.CheckLength(nameof(input), input, count);
        KernelDataTypes.CheckLength(nameof(output), output, count);
        Run(pool, sizeof(T), batch, rows, cols, input.Pointer, 0, output.Pointer);
    }

    /// <summary>
    /// The transpose of <paramref name="batch"/> matrices whose source starts every <paramref name="inputBatchStride"/>
    /// elements (0: dense), so a block of columns of wider rows is gathered as it is transposed. The caller checks the sizes.
    /// </summary>
    internal static void Run(XnnThreadPool pool, int elementSize, int batch, int rows, int cols, void* input, long inputBatchStride, void* output)
    {
        CheckShape(batch, rows, cols);
        NativeStatus.Check(NativeMethods.osn_transpose((nuint)elementSize, (nuint)batch, (nuint)rows, (nuint)cols, input,
            (nuint)inputBatchStride, output, pool.Handle));
    }

    private static long CheckShape(int batch, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        return (long)batch * rows * cols;
    }
}
