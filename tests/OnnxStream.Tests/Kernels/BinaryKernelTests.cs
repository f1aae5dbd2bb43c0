using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

internal sealed class BinaryKernelTests : KernelTestBase
{
    private static readonly (int[] A, int[] B)[] BroadcastPatterns =
    [
        ([1000], [1000]),
        ([2, 3, 4], [2, 3, 4]),
        ([2, 3, 4], []),
        ([], [7]),
        ([2, 3, 4], [4]),
        ([2, 3, 4], [3, 1]),
        ([1, 3, 1], [2, 1, 5]),
        ([2, 320, 8, 8], [1, 320, 1, 1]),
        ([2, 1, 3, 1, 5, 1], [1, 4, 1, 2, 1, 6]),
        ([17], [1]),
    ];

    private static IEnumerable<TestCaseData> Cases(params BinaryOperation[] operations) =>
        from operation in operations
        from pattern in BroadcastPatterns
        select new TestCaseData(operation, pattern.A, pattern.B)
            .SetArgDisplayNames(operation.ToString(), $"[{string.Join(',', pattern.A)}]", $"[{string.Join(',', pattern.B)}]");

    private static IEnumerable<TestCaseData> Float32Cases() =>
        Cases(BinaryOperation.Add, BinaryOperation.Subtract, BinaryOperation.Multiply, BinaryOperation.Divide);

    private static IEnumerable<TestCaseData> Float16Cases() => Cases(BinaryOperation.Add, BinaryOperation.Multiply);

    private static IEnumerable<TestCaseData> QUInt8Cases() =>
        Cases(BinaryOperation.Add, BinaryOperation.Subtract, BinaryOperation.Multiply);

    [TestCaseSource(nameof(Float32Cases))]
    public void Float32_matches_reference(BinaryOperation operation, int[] aShape, int[] bShape)
    {
        var a = Reference.RandomFloats((int)Shapes.ElementCount(aShape), 1);
        // Divisors away from zero keep the relative tolerance meaningful.
        var b = Reference.RandomFloats((int)Shapes.ElementCount(bShape), 2, 0.5f, 2f);
        var expected = Reference.Binary(operation, a, aShape, b, bShape);
        using var aBuffer = NativeBuffer<float>.CopyOf(a);
        using var bBuffer = NativeBuffer<float>.CopyOf(b);
        using var output = NativeBuffer<float>.Allocate(expected.Length);
        WithEachThreadCount(pool =>
        {
            output.Span.Clear();
            BinaryKernels.Run(pool, operation, aBuffer, aShape, bBuffer, bShape, output);
            Reference.AssertClose(output.Span, expected, 1e-6, 1e-7);
        });
    }

    [TestCaseSource(nameof(Float16Cases))]
    public void Float16_matches_reference(BinaryOperation operation, int[] aShape, int[] bShape)
    {
        RequireFloat16();
        var a = Reference.RoundToHalf(Reference.RandomFloats((int)Shapes.ElementCount(aShape), 3));
        var b = Reference.RoundToHalf(Reference.RandomFloats((int)Shapes.ElementCount(bShape), 4));
        var expected = Reference.Binary(operation, a, aShape, b, bShape);
        using var aBuffer = NativeBuffer<Half>.CopyOf(Reference.ToHalf(a));
        using var bBuffer = NativeBuffer<Half>.CopyOf(Reference.ToHalf(b));
        using var output = NativeBuffer<Half>.Allocate(expected.Length);
        WithEachThreadCount(pool =>
        {
            BinaryKernels.Run(pool, operation, aBuffer, aShape, bBuffer, bShape, output);
            // One f16 rounding of the result: half an ulp, 2^-11 relative. XNNPACK runs its kernels with
            // denormals flushed (on arm64 that includes f16), so results below 2^-14 may come back as zero.
            Reference.AssertClose(Reference.ToFloat(output.Span), expected, 4.9e-4, Math.ScaleB(1, -14));
        });
    }

    [TestCaseSource(nameof(QUInt8Cases))]
    public void QUInt8_is_within_one_quantization_step(BinaryOperation operation, int[] aShape, int[] bShape)
    {
        var aQ = new Quantization(1f / 100, 110);
        var bQ = new Quantization(1f / 80, 140);
        // Wide enough for every result (|a·b| ≤ 1, |a ± b| ≤ 2) so nothing saturates.
        var outputQ = operation == BinaryOperation.Multiply ? new Quantization(1f / 120, 128) : new Quantization(1f / 60, 128);
        var a = Reference.Quantize(Reference.RandomFloats((int)Shapes.ElementCount(aShape), 5), aQ);
        var b = Reference.Quantize(Reference.RandomFloats((int)Shapes.ElementCount(bShape), 6), bQ);
        var expected = Reference.Binary(operation, Reference.Dequantize(a, aQ), aShape, Reference.Dequantize(b, bQ), bShape);
        using var aBuffer = NativeBuffer<byte>.CopyOf(a);
        using var bBuffer = NativeBuffer<byte>.CopyOf(b);
        using var output = NativeBuffer<byte>.Allocate(expected.Length);
        WithEachThreadCount(pool =>
        {
            BinaryKernels.RunQUInt8(pool, operation, aBuffer, aShape, aQ, bBuffer, bShape, bQ, output, outputQ);
            Reference.AssertClose(Reference.Dequantize(output.Span, outputQ), expected, 0, 1.01 * outputQ.Scale);
        });
    }

    [Test]
    public void Shapes_that_do_not_broadcast_are_named_in_the_native_error()
    {
        using var pool = XnnThreadPool.Create(1);
        using var a = NativeBuffer<float>.Allocate(6);
        using var b = NativeBuffer<float>.Allocate(4);
        using var output = NativeBuffer<float>.Allocate(24);
        var error = Assert.Throws<NativeKernelException>(() => BinaryKernels.Run(pool, BinaryOperation.Add, a, [2, 3], b, [4], output))!;
        Assert.That(error.Status, Is.EqualTo(NativeKernelStatus.InvalidArgument));
        Assert.That(error.Message, Does.Contain("[2,3]").And.Contain("[4]"));
    }

    [Test]
    public void Operations_the_pinned_xnnpack_lacks_are_reported_as_unsupported()
    {
        using var pool = XnnThreadPool.Create(1);
        using var h = NativeBuffer<Half>.Allocate(4);
        using var q = NativeBuffer<byte>.Allocate(4);
        var quantization = new Quantization(0.1f, 0);
        if (HasFloat16)
            Assert.That(Assert.Throws<NativeKernelException>(() => BinaryKernels.Run(pool, BinaryOperation.Divide, h, [4], h, [4], h))!.Status,
                Is.EqualTo(NativeKernelStatus.Unsupported));
        Assert.That(Assert.Throws<NativeKernelException>(() =>
                BinaryKernels.RunQUInt8(pool, BinaryOperation.Divide, q, [4], quantization, q, [4], quantization, q, quantization))!.Status,
            Is.EqualTo(NativeKernelStatus.Unsupported));
        Assert.Throws<ArgumentException>(() => BinaryKernels.Run(pool, BinaryOperation.Add, q, [4], q, [4], q));
    }

    [Test]
    public void Ranks_above_six_are_rejected_with_a_message()
    {
        using var pool = XnnThreadPool.Create(1);
        using var a = NativeBuffer<float>.Allocate(1);
        var error = Assert.Throws<NativeKernelException>(() => BinaryKernels.Run(pool, BinaryOperation.Add, a, [1, 1, 1, 1, 1, 1, 1], a, [1], a))!;
        Assert.That(error.Message, Does.Contain("exceed 6"));
    }
}
