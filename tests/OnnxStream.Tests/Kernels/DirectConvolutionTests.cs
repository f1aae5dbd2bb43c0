using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

/// <summary>
/// The shim's direct convolution (NCHW float32 images, OHWI float16 kernel) against the reference convolution on the same
/// float16-rounded weights: the channel counts leave partial vectors and register tiles, and the output channels are
/// computed in two calls, as a streamed kernel is.
/// </summary>
internal sealed class DirectConvolutionTests : KernelTestBase
{
    private static IEnumerable<TestCaseData> Geometries()
    {
        Convolution2dGeometry Same3x3(int inputs, int outputs) =>
            new(3, 3, inputs, outputs, PaddingTop: 1, PaddingLeft: 1, PaddingBottom: 1, PaddingRight: 1);
        yield return new TestCaseData(Same3x3(32, 20), 1, 8, 8).SetName("3x3 same padding, 32 channels");
        yield return new TestCaseData(Same3x3(3, 8), 2, 9, 11).SetName("3x3 same padding, 3 channels, batch 2");
        yield return new TestCaseData(Same3x3(1000, 7), 1, 4, 5).SetName("3x3, 1000 input channels (a partial vector)");
        yield return new TestCaseData(new Convolution2dGeometry(1, 1, 48, 33), 2, 5, 7).SetName("pointwise 1x1");
        yield return new TestCaseData(new Convolution2dGeometry(3, 3, 5, 7, StrideHeight: 2, StrideWidth: 2, PaddingTop: 1, PaddingLeft: 1, PaddingBottom: 1, PaddingRight: 1), 1, 17, 17)
            .SetName("3x3 stride 2 (UNet downsample)");
        yield return new TestCaseData(new Convolution2dGeometry(3, 2, 17, 9, PaddingTop: 2, PaddingLeft: 0, PaddingBottom: 1, PaddingRight: 3), 1, 8, 6)
            .SetName("3x2, asymmetric padding");
        yield return new TestCaseData(new Convolution2dGeometry(3, 3, 20, 6, DilationHeight: 2, DilationWidth: 3, PaddingTop: 2, PaddingLeft: 3, PaddingBottom: 2, PaddingRight: 3), 1, 12, 13)
            .SetName("dilated");
        yield return new TestCaseData(new Convolution2dGeometry(7, 1, 1, 17, StrideHeight: 3), 1, 20, 5).SetName("7x1 stride 3, 1 input channel");
    }

    [TestCaseSource(nameof(Geometries))]
    public void Matches_reference(Convolution2dGeometry g, int batch, int height, int width)
    {
        Assert.That(DirectConvolutionKernel.Supports(g));
        var kernel = Reference.RoundToHalf(Reference.RandomFloats((int)g.KernelLength, 1));
        var bias = Reference.RandomFloats(g.OutputChannels, 2);
        var nhwc = Reference.RandomFloats(batch * height * width * g.InputChannels, 3);
        var (outputHeight, outputWidth) = (g.OutputHeight(height), g.OutputWidth(width));
        var expected = ToNchw(Reference.Convolution(nhwc, kernel, bias, g, batch, height, width), batch, g.OutputChannels, outputHeight * outputWidth);

        using var input = NativeBuffer<float>.CopyOf(ToNchw(nhwc, batch, g.InputChannels, height * width));
        using var prepared = NativeBuffer<float>.Allocate((int)DirectConvolutionKernel.PreparedInputLength(g, batch, height, width));
        using var halfKernel = NativeBuffer<Half>.CopyOf(Reference.ToHalf(kernel));
        using var output = NativeBuffer<float>.Allocate(batch * g.OutputChannels * outputHeight * outputWidth);
        // Output channels in two calls (the first a partial register tile), the second without a bias.
        var split = Math.Max(1, g.OutputChannels / 2 - 1);
        var rowLength = (int)(g.KernelLength / g.OutputChannels);
        WithEachThreadCount(pool =>
        {
            prepared.Span.Fill(float.NaN);
            output.Span.Fill(float.NaN);
            DirectConvolutionKernel.PrepareInput(pool, g, batch, height, width, input, prepared);
            DirectConvolutionKernel.Run(pool, g, batch, height, width, prepared, 0, split, Rows(halfKernel, 0, split * rowLength), bias.AsSpan(0, split), output);
            if (split < g.OutputChannels)
                DirectConvolutionKernel.Run(pool, g, batch, height, width, prepared, split, g.OutputChannels - split,
                    Rows(halfKernel, split * rowLength, (g.OutputChannels - split) * rowLength), default, output);
            var actual = output.Span.ToArray();
            // The second call had no bias: add it back.
            for (var image = 0; image < batch; image++)
                for (var o = split; o < g.OutputChannels; o++)
                    for (var p = 0; p < outputHeight * outputWidth; p++)
                        actual[(image * g.OutputChannels + o) * outputHeight * outputWidth + p] += bias[o];
            Reference.AssertClose(actual, expected, 1e-5, 1e-5);
        });
    }

    [TestCase(13, 48, 21, TestName = "Fully connected: 13 rows, 48 channels, 21 outputs")]
    [TestCase(250, 1024, 70, TestName = "Fully connected: 250 rows (pixel blocks), 1024 channels (chunks), 70 outputs")]
    public void Fully_connected_matches_reference(int rows, int inputs, int outputs)
    {
        // Rows of the input and of the output are wider than the product's: the other columns are not the kernel's.
        var (inputStride, outputStride) = (inputs + 5, outputs + 3);
        var x = Reference.RandomFloats(rows * inputStride, 4);
        var weights = Reference.RoundToHalf(Reference.RandomFloats(outputs * inputs, 5));
        var bias = Reference.RandomFloats(outputs, 6);
        using var input = NativeBuffer<float>.CopyOf(x);
        using var halfWeights = NativeBuffer<Half>.CopyOf(Reference.ToHalf(weights));
        using var output = NativeBuffer<float>.Allocate(rows * outputStride);
        WithEachThreadCount(pool =>
        {
            output.Span.Fill(-7);
            DirectFullyConnectedKernel.Run(pool, rows, inputs, input, inputStride, halfWeights, outputs, bias, output, outputStride);
            for (var r = 0; r < rows; r++)
                for (var o = 0; o < outputStride; o++)
                {
                    var expected = -7.0;
                    if (o < outputs)
                    {
                        expected = bias[o];
                        for (var i = 0; i < inputs; i++) expected += (double)x[r * inputStride + i] * weights[o * inputs + i];
                    }
                    Assert.That(output.Span[r * outputStride + o], Is.EqualTo(expected).Within(1e-4), $"row {r} output {o}");
                }
        });
        using var pool = XnnThreadPool.Create(1);
        Assert.Throws<ArgumentException>(() => DirectFullyConnectedKernel.Run(pool, rows, inputs - 8, input, inputStride,
            halfWeights, outputs, bias, output, outputStride), "input channels not a multiple of 16");
    }

    [Test]
    public void Unsupported_geometries_and_short_buffers_are_refused()
    {
        var grouped = new Convolution2dGeometry(3, 3, 2, 2, Groups: 2);
        Assert.That(DirectConvolutionKernel.Supports(grouped), Is.False);
        var error = Assert.Throws<NativeKernelException>(() => DirectConvolutionKernel.PreparedInputLength(grouped, 1, 4, 4))!;
        Assert.That(error.Message, Does.Contain("osn_direct_convolution").And.Contain("groups"));
        var tooManyTaps = new Convolution2dGeometry(9, 9, 16, 5);
        Assert.That(DirectConvolutionKernel.Supports(tooManyTaps), Is.False);
        Assert.That(Assert.Throws<NativeKernelException>(() => DirectConvolutionKernel.PreparedInputLength(tooManyTaps, 1, 9, 9))!.Message,
            Does.Contain("taps"));

        var g = new Convolution2dGeometry(3, 3, 4, 4);
        using var pool = XnnThreadPool.Create(1);
        using var input = NativeBuffer<float>.Allocate(4 * 3 * 3);
        using var prepared = NativeBuffer<float>.Allocate((int)DirectConvolutionKernel.PreparedInputLength(g, 1, 3, 3));
        using var kernel = NativeBuffer<Half>.Allocate(4 * 9 * 4);
        using var output = NativeBuffer<float>.Allocate(4);
        Assert.Throws<ArgumentException>(() => DirectConvolutionKernel.Run(pool, g, 1, 3, 3, prepared, 0, 4, Rows(kernel, 0, 9), default, output), "a short kernel");
        Assert.Throws<ArgumentException>(() => DirectConvolutionKernel.Run(pool, g, 1, 3, 3, prepared, 0, 4, kernel, new float[3], output), "a short bias");
        Assert.That(Assert.Throws<NativeKernelException>(() => DirectConvolutionKernel.Run(pool, g, 1, 3, 3, prepared, 2, 4, kernel, default, output))!.Message,
            Does.Contain("output channels [2, 6)"));
        Assert.That(Assert.Throws<NativeKernelException>(() => DirectConvolutionKernel.PreparedInputLength(g, 1, 2, 2))!.Message,
            Does.Contain("smaller than the 3x3 kernel window"));
    }

    private static unsafe NativeBuffer<Half> Rows(NativeBuffer<Half> buffer, int offset, int length) =>
        NativeBuffer<Half>.Wrap(buffer.Pointer + offset, length);

    private static float[] ToNchw(float[] nhwc, int batch, int channels, int pixels)
    {
        var nchw = new float[nhwc.Length];
        for (var image = 0; image < batch; image++)
            for (var p = 0; p < pixels; p++)
                for (var c = 0; c < channels; c++)
                    nchw[(image * channels + c) * pixels + p] = nhwc[(image * pixels + p) * channels + c];
        return nchw;
    }
}
