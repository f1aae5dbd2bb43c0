using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

internal sealed class ActivationKernelTests : KernelTestBase
{
    [TestCase(1)]
    [TestCase(7)]
    [TestCase(17)]
    [TestCase(100_003)]
    public void Sigmoid_float32_matches_reference(int count)
    {
        var input = Reference.RandomFloats(count, 1, -12f, 12f);
        var expected = Reference.Sigmoid(input);
        using var inputBuffer = NativeBuffer<float>.CopyOf(input);
        using var output = NativeBuffer<float>.Allocate(count);
        WithEachThreadCount(pool =>
        {
            ActivationKernels.Sigmoid(pool, count, inputBuffer, output);
            Reference.AssertClose(output.Span, expected, 1e-5, 1e-7);
        });
    }

    [TestCase(7)]
    [TestCase(1000)]
    public void Sigmoid_quantized_is_within_one_step(int count)
    {
        var inputQ = new Quantization(8f / 127, 128);
        var outputQ = new Quantization(1f / 256, 0);
        var input = Reference.Quantize(Reference.RandomFloats(count, 2, -8f, 8f), inputQ);
        var expected = Reference.Sigmoid(Reference.Dequantize(input, inputQ));
        using var inputBuffer = NativeBuffer<byte>.CopyOf(input);
        using var output = NativeBuffer<byte>.Allocate(count);
        WithEachThreadCount(pool =>
        {
            ActivationKernels.SigmoidQUInt8(pool, count, inputBuffer, inputQ, output, outputQ);
            Reference.AssertClose(Reference.Dequantize(output.Span, outputQ), expected, 0, 1.01 * outputQ.Scale);
        });
    }

    [TestCase(1, 1)]
    [TestCase(7, 17)]
    [TestCase(3, 1000)]
    [TestCase(77, 77)]
    [TestCase(64, 4096)]
    public void Softmax_float32_matches_reference(int rows, int channels)
    {
        var input = Reference.RandomFloats(rows * channels, 3, -20f, 20f);
        var expected = Reference.Softmax(input, rows, channels);
        using var inputBuffer = NativeBuffer<float>.CopyOf(input);
        using var output = NativeBuffer<float>.Allocate(rows * channels);
        WithEachThreadCount(pool =>
        {
            ActivationKernels.Softmax(pool, rows, channels, inputBuffer, output);
            Reference.AssertClose(output.Span, expected, 1e-5, 1e-8);
        });
    }

    [TestCase(5, 9)]
    [TestCase(3, 300)]
    public void Softmax_quantized_is_within_two_steps(int rows, int channels)
    {
        var inputQ = new Quantization(0.05f, 128);
        var input = Reference.Quantize(Reference.RandomFloats(rows * channels, 4, -5f, 5f), inputQ);
        var expected = Reference.Softmax(Reference.Dequantize(input, inputQ), rows, channels);
        using var inputBuffer = NativeBuffer<byte>.CopyOf(input);
        using var output = NativeBuffer<byte>.Allocate(rows * channels);
        WithEachThreadCount(pool =>
        {
            ActivationKernels.SoftmaxQUInt8(pool, rows, channels, inputBuffer, inputQ.Scale, output);
            Reference.AssertClose(Reference.Dequantize(output.Span, Quantization.SoftmaxOutput), expected, 0, 2.01 / 256);
        });
    }
}
