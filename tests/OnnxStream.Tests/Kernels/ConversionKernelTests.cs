using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

internal sealed class ConversionKernelTests : KernelTestBase
{
    [TestCase(1)]
    [TestCase(17)]
    [TestCase(100_001)]
    public void Float16_round_trip_matches_System_Half(int count)
    {
        var values = Reference.RandomFloats(count, 1, -70000f, 70000f);
        values[0] = 1e-6f; // subnormal in f16
        using var input = NativeBuffer<float>.CopyOf(values);
        using var halves = NativeBuffer<Half>.Allocate(count);
        using var back = NativeBuffer<float>.Allocate(count);
        WithEachThreadCount(pool =>
        {
            ConversionKernels.ToFloat16(pool, count, input, halves);
            // Round to nearest even, overflow to infinity: exactly what System.Half does.
            Assert.That(halves.Span.ToArray(), Is.EqualTo(Reference.ToHalf(values)));
            ConversionKernels.ToFloat32(pool, count, halves, back);
            Assert.That(back.Span.ToArray(), Is.EqualTo(Reference.RoundToHalf(values)));
        });
    }

    [TestCase(1)]
    [TestCase(1000)]
    public void QUInt8_round_trip_matches_the_quantization_rule(int count)
    {
        var quantization = new Quantization(0.0123f, 117);
        var values = Reference.RandomFloats(count, 2, -3f, 3f);
        using var input = NativeBuffer<float>.CopyOf(values);
        using var bytes = NativeBuffer<byte>.Allocate(count);
        using var back = NativeBuffer<float>.Allocate(count);
        WithEachThreadCount(pool =>
        {
            ConversionKernels.Quantize(pool, count, input, bytes, quantization);
            var expected = Reference.Quantize(values, quantization);
            for (var i = 0; i < count; i++)
                Assert.That(Math.Abs(bytes.Span[i] - expected[i]), Is.LessThanOrEqualTo(1), $"element {i} of {values[i]}");
            ConversionKernels.Dequantize(pool, count, bytes, quantization, back);
            Reference.AssertClose(back.Span, Reference.Dequantize(bytes.Span, quantization), 1e-6);
        });
    }
}
