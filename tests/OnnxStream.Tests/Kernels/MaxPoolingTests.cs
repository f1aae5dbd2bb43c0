using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

internal sealed class MaxPoolingTests : KernelTestBase
{
    private static IEnumerable<TestCaseData> Geometries()
    {
        yield return new TestCaseData(new Pooling2dGeometry(2, 2, 2, 2), 1, 8, 8, 3).SetName("2x2 stride 2");
        yield return new TestCaseData(new Pooling2dGeometry(5, 5, PaddingTop: 2, PaddingLeft: 2, PaddingBottom: 2, PaddingRight: 2), 1, 20, 20, 32)
            .SetName("5x5 same padding (YOLOv8 SPPF)");
        yield return new TestCaseData(new Pooling2dGeometry(3, 2, 2, 3, PaddingTop: 1, PaddingLeft: 0, PaddingBottom: 0, PaddingRight: 1), 2, 9, 10, 7)
            .SetName("3x2 asymmetric padding, batch 2");
        yield return new TestCaseData(new Pooling2dGeometry(2, 3, DilationHeight: 2, DilationWidth: 2), 1, 11, 13, 17).SetName("dilated");
        yield return new TestCaseData(new Pooling2dGeometry(3, 3, 2, 2), 1, 7, 7, 1).SetName("odd size, 1 channel");
    }

    [TestCaseSource(nameof(Geometries))]
    public void Float32_matches_reference(Pooling2dGeometry g, int batch, int height, int width, int channels)
    {
        var input = Reference.RandomFloats(batch * height * width * channels, 1);
        var expected = Reference.MaxPool(input, g, batch, height, width, channels);
        using var inputBuffer = NativeBuffer<float>.CopyOf(input);
        using var output = NativeBuffer<float>.Allocate(expected.Length);
        WithEachThreadCount(pool =>
        {
            MaxPooling2dKernel.Run(pool, g, batch, height, width, channels, inputBuffer, output);
            Reference.AssertClose(output.Span, expected, 0);
        });
    }

    [TestCaseSource(nameof(Geometries))]
    public void Float16_and_QUInt8_select_the_same_elements(Pooling2dGeometry g, int batch, int height, int width, int channels)
    {
        var quantization = new Quantization(1f / 127, 128);
        var input = Reference.Quantize(Reference.RandomFloats(batch * height * width * channels, 2), quantization);
        var real = Reference.Dequantize(input, quantization);
        var expected = Reference.MaxPool(real, g, batch, height, width, channels);
        using var pool = XnnThreadPool.Create(2);
        using var bytes = NativeBuffer<byte>.CopyOf(input);
        using var byteOutput = NativeBuffer<byte>.Allocate(expected.Length);
        MaxPooling2dKernel.Run(pool, g, batch, height, width, channels, bytes, byteOutput);
        Reference.AssertClose(Reference.Dequantize(byteOutput.Span, quantization), expected, 0);

        if (!HasFloat16) return;
        using var halves = NativeBuffer<Half>.CopyOf(Reference.ToHalf(real));
        using var halfOutput = NativeBuffer<Half>.Allocate(expected.Length);
        MaxPooling2dKernel.Run(pool, g, batch, height, width, channels, halves, halfOutput);
        Reference.AssertClose(Reference.ToFloat(halfOutput.Span), Reference.RoundToHalf(expected), 0);
    }

    [Test]
    public void Windows_larger_than_the_padded_input_and_1x1_windows_are_rejected()
    {
        using var pool = XnnThreadPool.Create(1);
        using var buffer = NativeBuffer<float>.Allocate(16);
        var tooLarge = Assert.Throws<NativeKernelException>(() =>
            MaxPooling2dKernel.Run(pool, new Pooling2dGeometry(5, 5), 1, 3, 3, 1, buffer, buffer))!;
        Assert.That(tooLarge.Message, Does.Contain("smaller than the dilated window"));
        var oneByOne = Assert.Throws<NativeKernelException>(() =>
            MaxPooling2dKernel.Run(pool, new Pooling2dGeometry(1, 1, 2, 2), 1, 4, 4, 1, buffer, buffer))!;
        Assert.That(oneByOne.Message, Does.Contain("1x1"));
    }
}
