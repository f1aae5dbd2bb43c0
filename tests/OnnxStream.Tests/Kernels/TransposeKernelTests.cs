using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

/// <summary>The native batched transpose against a plain loop: every element size, ragged tile edges, a gathering batch stride.</summary>
internal sealed unsafe class TransposeKernelTests : KernelTestBase
{
    [TestCase(1, 3, 37, 70)]
    [TestCase(2, 2, 67, 41)]
    [TestCase(4, 2, 45, 9)]
    [TestCase(4, 1, 320, 4096)]
    [TestCase(8, 3, 5, 33)]
    [TestCase(2, 4, 1, 19)]
    public void Transposes_match_a_loop(int elementSize, int batch, int rows, int cols)
    {
        var count = batch * rows * cols;
        var bytes = new byte[count * elementSize];
        new Random(elementSize * 1000 + rows).NextBytes(bytes);
        using var input = NativeBuffer<byte>.CopyOf(bytes);
        using var output = NativeBuffer<byte>.Allocate(bytes.Length);
        var expected = new byte[bytes.Length];
        for (var b = 0; b < batch; b++)
            for (var r = 0; r < rows; r++)
                for (var c = 0; c < cols; c++)
                    Array.Copy(bytes, ((b * rows + r) * cols + c) * elementSize, expected, ((b * cols + c) * rows + r) * elementSize, elementSize);
        WithEachThreadCount(pool =>
        {
            output.Span.Clear();
            TransposeKernel.Run(pool, elementSize, batch, rows, cols, input.Pointer, 0, output.Pointer);
            Assert.That(output.Span.ToArray(), Is.EqualTo(expected));
        });
    }

    [Test]
    public void A_batch_stride_gathers_a_block_of_each_row()
    {
        // Rows of 7 matrices of 10 × 3 half-words; the block of matrix rows 4..8 (5 × 3) of each is transposed.
        const int batch = 7, rows = 10, cols = 3, first = 4, taken = 5;
        var values = Enumerable.Range(0, batch * rows * cols).Select(v => (ushort)v).ToArray();
        using var input = NativeBuffer<ushort>.CopyOf(values);
        using var output = NativeBuffer<ushort>.Allocate(batch * taken * cols);
        WithEachThreadCount(pool =>
        {
            TransposeKernel.Run(pool, 2, batch, taken, cols, input.Pointer + first * cols, rows * cols, output.Pointer);
            for (var b = 0; b < batch; b++)
                for (var c = 0; c < cols; c++)
                    for (var r = 0; r < taken; r++)
                        Assert.That(output.Span[(b * cols + c) * taken + r], Is.EqualTo(values[(b * rows + first + r) * cols + c]), $"[{b},{c},{r}]");
        });
    }

    [Test]
    public void The_typed_overload_checks_lengths()
    {
        using var pool = XnnThreadPool.Create(1);
        using var small = NativeBuffer<float>.Allocate(5);
        using var matrix = NativeBuffer<float>.CopyOf([1, 2, 3, 4, 5, 6]);
        using var transposed = NativeBuffer<float>.Allocate(6);
        Assert.Throws<ArgumentException>(() => TransposeKernel.Run(pool, 1, 2, 3, small, transposed));
        Assert.Throws<ArgumentException>(() => TransposeKernel.Run(pool, 1, 2, 3, matrix, small));
        TransposeKernel.Run(pool, 1, 2, 3, matrix, transposed);
        Assert.That(transposed.Span.ToArray(), Is.EqualTo(new float[] { 1, 4, 2, 5, 3, 6 }));
    }
}
