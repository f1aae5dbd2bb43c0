using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

internal sealed unsafe class ConvolutionTests : KernelTestBase
{
    private static IEnumerable<TestCaseData> Geometries()
    {
        yield return new TestCaseData(new Convolution2dGeometry(1, 1, 4, 4), 1, 7, 7).SetName("pointwise 1x1");
        yield return new TestCaseData(new Convolution2dGeometry(3, 3, 3, 8, PaddingTop: 1, PaddingLeft: 1, PaddingBottom: 1, PaddingRight: 1), 2, 9, 11)
            .SetName("3x3 same padding, batch 2");
        yield return new TestCaseData(new Convolution2dGeometry(3, 3, 5, 7, StrideHeight: 2, StrideWidth: 2, PaddingTop: 1, PaddingLeft: 1, PaddingBottom: 1, PaddingRight: 1), 1, 17, 17)
            .SetName("3x3 stride 2 (UNet downsample)");
        yield return new TestCaseData(new Convolution2dGeometry(3, 2, 2, 3, Groups: 4, PaddingTop: 2, PaddingLeft: 0, PaddingBottom: 1, PaddingRight: 3), 1, 8, 6)
            .SetName("grouped, asymmetric padding");
        yield return new TestCaseData(new Convolution2dGeometry(3, 3, 1, 1, Groups: 16, PaddingTop: 1, PaddingLeft: 1, PaddingBottom: 1, PaddingRight: 1), 1, 10, 10)
            .SetName("depthwise 3x3");
        yield return new TestCaseData(new Convolution2dGeometry(3, 3, 4, 6, DilationHeight: 2, DilationWidth: 3, PaddingTop: 2, PaddingLeft: 3, PaddingBottom: 2, PaddingRight: 3), 1, 12, 13)
            .SetName("dilated");
        yield return new TestCaseData(new Convolution2dGeometry(3, 3, 1000, 2, PaddingTop: 1, PaddingLeft: 1, PaddingBottom: 1, PaddingRight: 1), 1, 4, 5)
            .SetName("3x3 with 1000 input channels");
        yield return new TestCaseData(new Convolution2dGeometry(7, 1, 1, 17, StrideHeight: 3), 1, 20, 5).SetName("7x1 stride 3, 1 input channel");
    }

    [TestCaseSource(nameof(Geometries))]
    public void Float32_matches_reference(Convolution2dGeometry g, int batch, int height, int width)
    {
        var kernel = Reference.RandomFloats((int)g.KernelLength, 1);
        var bias = Reference.RandomFloats(g.OutputChannels, 2);
        var input = Reference.RandomFloats(batch * height * width * g.InputChannels, 3);
        using var op = Convolution2dOperator.CreateFloat32(g, kernel, bias);
        using var inputBuffer = NativeBuffer<float>.CopyOf(input);
        using var output = NativeBuffer<float>.Allocate(batch * g.OutputHeight(height) * g.OutputWidth(width) * g.OutputChannels);
        var expected = Reference.Convolution(input, kernel, bias, g, batch, height, width);

        WithEachThreadCount(pool =>
        {
            output.Span.Clear();
            op.Run(pool, batch, height, width, inputBuffer, output);
            Reference.AssertClose(output.Span, expected, 1e-5, 1e-5);
        });
    }

    [Test]
    public void Pixel_strides_read_and_write_channels_in_place()
    {
        // Input channels 2..6 of 9-channel pixels, convolved into output channels 3..7 of 11-channel pixels; the
        // output's other channels stay as they were.
        var g = new Convolution2dGeometry(3, 3, 5, 5, StrideHeight: 2, PaddingTop: 1, PaddingLeft: 1, PaddingBottom: 1, PaddingRight: 1,
            InputPixelStride: 9, OutputPixelStride: 11);
        const int batch = 2, height = 7, width = 6;
        var (outputHeight, outputWidth) = (g.OutputHeight(height), g.OutputWidth(width));
        var wide = Reference.RandomFloats(batch * height * width * 9, 7);
        var kernel = Reference.RandomFloats((int)g.KernelLength, 8);
        var bias = Reference.RandomFloats(5, 9);
        var dense = new float[batch * height * width * 5];
        for (var p = 0; p < batch * height * width; p++) Array.Copy(wide, p * 9 + 2, dense, p * 5, 5);
        var expected = Reference.Convolution(dense, kernel, bias, g with { InputPixelStride = 0, OutputPixelStride = 0 }, batch, height, width);
        using var op = Convolution2dOperator.CreateFloat32(g, kernel, bias);
        using var input = NativeBuffer<float>.CopyOf(wide);
        using var output = NativeBuffer<float>.Allocate(batch * outputHeight * outputWidth * 11);
        WithEachThreadCount(pool =>
        {
            output.Span.Fill(-7);
            op.Run(pool, batch, height, width, Offset(input, 2), Offset(output, 3));
            var actual = new float[expected.Length];
            for (var p = 0; p < batch * outputHeight * outputWidth; p++)
            {
                for (var c = 0; c < 11; c++)
                    if (c is < 3 or >= 8) Assert.That(output.Span[p * 11 + c], Is.EqualTo(-7f), $"pixel {p} channel {c} is not the convolution's");
                output.Span.Slice(p * 11 + 3, 5).CopyTo(actual.AsSpan(p * 5, 5));
            }
            Reference.AssertClose(actual, expected, 1e-5, 1e-5);
        });
        Assert.Throws<ArgumentException>(() => Convolution2dOperator.CreateFloat32(g with { OutputPixelStride = 4 }, kernel, bias), "a stride below the channels");
    }

    private static unsafe NativeBuffer<float> Offset(NativeBuffer<float> buffer, int offset) =>
        NativeBuffer<float>.Wrap(buffer.Pointer + offset, buffer.Length - offset);

    [TestCaseSource(nameof(Geometries))]
    public void Float16_matches_reference(Convolution2dGeometry g, int batch, int height, int width)
    {
        RequireFloat16();
        var kernel = Reference.RoundToHalf(Reference.RandomFloats((int)g.KernelLength, 4));
        var bias = Reference.RoundToHalf(Reference.RandomFloats(g.OutputChannels, 5));
        var input = Reference.RoundToHalf(Reference.RandomFloats(batch * height * width * g.InputChannels, 6));
        using var pool = XnnThreadPool.Create(2);
        using var op = Convolution2dOperator.CreateFloat16(g, Reference.ToHalf(kernel), Reference.ToHalf(bias));
        using var inputBuffer = NativeBuffer<Half>.CopyOf(Reference.ToHalf(input));
        using var output = NativeBuffer<Half>.Allocate(batch * g.OutputHeight(height) * g.OutputWidth(width) * g.OutputChannels);

        op.Run(pool, batch, height, width, inputBuffer, output);

        var expected = Reference.Convolution(input, kernel, bias, g, batch, height, width);
        Reference.AssertCloseFloat16Sums(output.Span, expected, g.KernelHeight * g.KernelWidth * g.GroupInputChannels);
    }

    [TestCaseSource(nameof(Geometries))]
    public void QUInt8_is_within_two_quantization_steps(Convolution2dGeometry g, int batch, int height, int width)
    {
        var inputQ = new Quantization(1f / 120, 127);
        var kernelQ = new Quantization(1f / 110, 130);
        var taps = g.KernelHeight * g.KernelWidth * g.GroupInputChannels;
        var outputQ = new Quantization(Math.Max(0.01f, 0.7f * MathF.Sqrt(taps) / 127), 125);
        var input = Reference.Quantize(Reference.RandomFloats(batch * height * width * g.InputChannels, 7), inputQ);
        var kernel = Reference.Quantize(Reference.RandomFloats((int)g.KernelLength, 8), kernelQ);
        var biasScale = inputQ.Scale * kernelQ.Scale;
        var bias = Array.ConvertAll(Reference.RandomFloats(g.OutputChannels, 9, -0.3f, 0.3f), v => (int)MathF.Round(v / biasScale));
        using var pool = XnnThreadPool.Create(2);
        using var op = Convolution2dOperator.CreateQUInt8(g, inputQ, kernelQ, kernel, bias, outputQ);
        using var inputBuffer = NativeBuffer<byte>.CopyOf(input);
        using var output = NativeBuffer<byte>.Allocate(batch * g.OutputHeight(height) * g.OutputWidth(width) * g.OutputChannels);

        op.Run(pool, batch, height, width, inputBuffer, output);

        var expected = Reference.Convolution(Reference.Dequantize(input, inputQ), Reference.Dequantize(kernel, kernelQ),
            Array.ConvertAll(bias, b => b * biasScale), g, batch, height, width);
        var clamped = Array.ConvertAll(expected, v => Math.Clamp(v, outputQ.Dequantize(0), outputQ.Dequantize(255)));
        Reference.AssertClose(Reference.Dequantize(output.Span, outputQ), clamped, 0, 2.01 * outputQ.Scale);
    }

    [Test]
    public void An_input_smaller_than_the_kernel_is_reported_by_the_native_layer()
    {
        var g = new Convolution2dGeometry(5, 5, 1, 1);
        using var pool = XnnThreadPool.Create(1);
        using var op = Convolution2dOperator.CreateFloat32(g, new float[25]);
        using var input = NativeBuffer<float>.Allocate(9);
        using var output = NativeBuffer<float>.Allocate(1);
        var error = Assert.Throws<NativeKernelException>(() => op.Run(pool, 1, 3, 3, input, output))!;
        Assert.That(error.Message, Does.Contain("convolution"));
    }
}
