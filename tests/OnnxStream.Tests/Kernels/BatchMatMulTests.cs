using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

internal sealed class BatchMatMulTests : KernelTestBase
{
    private static readonly BatchMatMulShape[] Shapes =
    [
        new(1, 1, 1, 1),
        new(3, 7, 17, 5),
        new(2, 33, 40, 77, TransposeB: true),
        new(8, 64, 40, 64, TransposeB: true),
        new(8, 64, 64, 40),
        new(4, 2, 1000, 3),
        new(3, 5, 9, 1001, TransposeB: true),
        new(4, 6, 8, 10, BroadcastB: true),
        new(4, 6, 8, 10, TransposeB: true, BroadcastA: true),
    ];

    private static IEnumerable<TestCaseData> Float32Cases() =>
        from shape in Shapes
        from algorithm in new[] { MatMulAlgorithm.Auto, MatMulAlgorithm.PackedGemm, MatMulAlgorithm.Direct }
        select new TestCaseData(shape, algorithm);

    [TestCaseSource(nameof(Float32Cases))]
    public void Float32_matches_reference(BatchMatMulShape shape, MatMulAlgorithm algorithm)
    {
        var a = Reference.RandomFloats((shape.BroadcastA ? 1 : shape.Batch) * shape.M * shape.K, 1);
        var b = Reference.RandomFloats((shape.BroadcastB ? 1 : shape.Batch) * shape.K * shape.N, 2);
        var expected = Reference.BatchMatMul(a, b, shape);
        using var aBuffer = NativeBuffer<float>.CopyOf(a);
        using var bBuffer = NativeBuffer<float>.CopyOf(b);
        using var c = NativeBuffer<float>.Allocate(expected.Length);
        WithEachThreadCount(pool =>
        {
            c.Span.Clear();
            BatchMatMulKernel.Run(pool, shape, aBuffer, bBuffer, c, algorithm);
            Reference.AssertClose(c.Span, expected, 1e-5, 1e-5 * Math.Sqrt(shape.K));
        });
    }

    [TestCaseSource(nameof(Shapes))]
    public void Float16_matches_reference(BatchMatMulShape shape)
    {
        RequireFloat16();
        var a = Reference.RoundToHalf(Reference.RandomFloats((shape.BroadcastA ? 1 : shape.Batch) * shape.M * shape.K, 3));
        var b = Reference.RoundToHalf(Reference.RandomFloats((shape.BroadcastB ? 1 : shape.Batch) * shape.K * shape.N, 4));
        var expected = Reference.BatchMatMul(a, b, shape);
        using var aBuffer = NativeBuffer<Half>.CopyOf(Reference.ToHalf(a));
        using var bBuffer = NativeBuffer<Half>.CopyOf(Reference.ToHalf(b));
        using var c = NativeBuffer<Half>.Allocate(expected.Length);
        WithEachThreadCount(pool =>
        {
            BatchMatMulKernel.Run(pool, shape, aBuffer, bBuffer, c);
            Reference.AssertCloseFloat16Sums(c.Span, expected, shape.K);
        });
    }

    [Test]
    public void The_direct_kernel_is_float32_only()
    {
        RequireFloat16();
        using var pool = XnnThreadPool.Create(1);
        using var h = NativeBuffer<Half>.Allocate(4);
        var error = Assert.Throws<NativeKernelException>(() =>
            BatchMatMulKernel.Run(pool, new BatchMatMulShape(1, 2, 2, 1), h, h, h, MatMulAlgorithm.Direct))!;
        Assert.That(error.Status, Is.EqualTo(NativeKernelStatus.Unsupported));
    }
}
