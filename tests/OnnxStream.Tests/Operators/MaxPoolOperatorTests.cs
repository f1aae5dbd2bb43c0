using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>MaxPool against ONNX Runtime.</summary>
internal sealed class MaxPoolOperatorTests
{
    private static void AssertPool(int[] x, TestAttributes attributes, int seed = 1) =>
        OperatorTestHarness.AssertMatchesOrt("MaxPool", [TestInput.Floats("x", x, seed)], attributes, relative: 0, absolute: 0);

    [Test]
    public void The_YOLOv8_SPPF_5x5_pad_2_stride_1_matches_ORT() =>
        AssertPool([1, 16, 10, 10], new TestAttributes().Int("ceil_mode", 0).Ints("dilations", 1, 1).Ints("kernel_shape", 5, 5)
            .Ints("pads", 2, 2, 2, 2).Ints("strides", 1, 1));

    [Test]
    public void A_2x2_stride_2_pool_matches_ORT() =>
        AssertPool([2, 3, 8, 6], new TestAttributes().Ints("kernel_shape", 2, 2).Ints("strides", 2, 2));

    [Test]
    public void One_channel_matches_ORT() =>
        AssertPool([1, 1, 9, 7], new TestAttributes().Ints("kernel_shape", 3, 3).Ints("strides", 2, 2).Ints("pads", 1, 1, 1, 1));

    [Test]
    public void Ceil_mode_matches_ORT() =>
        AssertPool([1, 3, 5, 7], new TestAttributes().Ints("kernel_shape", 2, 2).Ints("strides", 2, 2).Int("ceil_mode", 1));

    [Test]
    public void Ceil_mode_drops_a_window_that_would_start_in_the_end_padding() =>
        AssertPool([1, 2, 5, 5], new TestAttributes().Ints("kernel_shape", 2, 2).Ints("strides", 3, 3).Ints("pads", 0, 0, 1, 1).Int("ceil_mode", 1));

    [Test]
    public void Ceil_mode_with_padding_and_odd_sizes_matches_ORT() =>
        AssertPool([1, 3, 6, 9], new TestAttributes().Ints("kernel_shape", 3, 3).Ints("strides", 2, 2).Ints("pads", 1, 1, 1, 1).Int("ceil_mode", 1));

    [Test]
    public void A_1x1_window_with_stride_2_matches_ORT() =>
        AssertPool([1, 4, 7, 8], new TestAttributes().Ints("kernel_shape", 1, 1).Ints("strides", 2, 2));

    [Test]
    public void Dilations_match_ORT() =>
        AssertPool([1, 3, 11, 13], new TestAttributes().Ints("kernel_shape", 2, 3).Ints("dilations", 2, 2));

    [Test]
    public void Dilations_with_padding_match_ORT() =>
        AssertPool([1, 3, 9, 9], new TestAttributes().Ints("kernel_shape", 3, 3).Ints("dilations", 2, 2).Ints("pads", 2, 1, 2, 1), 7);

    [Test]
    public void Asymmetric_pads_and_strides_match_ORT() =>
        AssertPool([2, 5, 9, 10], new TestAttributes().Ints("kernel_shape", 3, 2).Ints("strides", 2, 3).Ints("pads", 1, 0, 0, 1));

    [TestCase("SAME_UPPER")]
    [TestCase("SAME_LOWER")]
    public void Auto_pad_matches_ORT(string autoPad) =>
        AssertPool([1, 3, 7, 8], new TestAttributes().Ints("kernel_shape", 3, 3).Ints("strides", 2, 2).String("auto_pad", autoPad));

    [Test]
    public void A_1D_pool_matches_ORT() =>
        AssertPool([2, 3, 17], new TestAttributes().Ints("kernel_shape", 3).Ints("strides", 2).Ints("pads", 1, 1));

    [Test]
    public void A_large_pool_runs_in_parallel_and_matches_ORT() =>
        AssertPool([1, 64, 40, 40], new TestAttributes().Ints("kernel_shape", 5, 5).Ints("pads", 2, 2, 2, 2));

    [Test]
    public void Float16_matches_ORT() =>
        OperatorTestHarness.AssertMatchesOrt("MaxPool",
            [Float16Runs.Half("x", [1, 4, 8, 8], OperatorTestHarness.RandomFloats(256, 3))],
            new TestAttributes().Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1).Ints("strides", 2, 2), relative: 0, absolute: 0);

    [Test]
    public void Quantized_uint8_keeps_its_quantization()
    {
        var quantization = new OnnxStream.Kernels.Quantization(0.5f, 10);
        var data = new byte[2 * 4 * 4];
        new Random(5).NextBytes(data);
        using var x = Tensor.From<byte>(data, [1, 2, 4, 4]);
        var expected = new byte[2 * 2 * 2];
        for (var c = 0; c < 2; c++)
            for (var oy = 0; oy < 2; oy++)
                for (var ox = 0; ox < 2; ox++)
                {
                    byte best = 0;
                    for (var ky = 0; ky < 2; ky++)
                        for (var kx = 0; kx < 2; kx++)
                            best = Math.Max(best, data[c * 16 + (2 * oy + ky) * 4 + 2 * ox + kx]);
                    expected[c * 4 + oy * 2 + ox] = best;
                }
        // Through the operator directly: the harness's test inputs carry no quantization.
        var node = new OnnxStream.Graph.GraphNode("pool", "MaxPool", [new OnnxStream.Graph.TensorDescriptor("x", [1, 2, 4, 4])],
            [new OnnxStream.Graph.TensorDescriptor("y", [])],
            new OnnxStream.Graph.NodeAttributes(new() { ["kernel_shape"] = "2,2", ["strides"] = "2,2" }), "test");
        var allocator = new OnnxStream.Memory.NativeAllocator();
        using var pool = OnnxStream.Kernels.XnnThreadPool.Create(2);
        using var quantized = Tensor.Allocate(ElementType.UInt8, [1, 2, 4, 4], allocator, quantization);
        x.Span<byte>().CopyTo(quantized.Span<byte>());
        var context = new OnnxStream.Operators.OperatorContext(node, [quantized], pool, allocator);
        new OnnxStream.Operators.MaxPoolOperator().Run(context);
        using var y = context.Outputs[0]!;
        Assert.That(y.Quantization, Is.EqualTo(quantization));
        Assert.That(y.Shape, Is.EqualTo(new[] { 1, 2, 2, 2 }));
        Assert.That(y.Span<byte>().ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void The_Indices_output_is_rejected()
    {
        var error = Assert.Throws<OnnxStream.Operators.OperatorException>(() => OperatorTestHarness.RunOnnxStream("MaxPool",
            [TestInput.Floats("x", [1, 1, 4, 4], 1)], new TestAttributes().Ints("kernel_shape", 2, 2), 2, 1))!;
        Assert.That(error.Message, Does.Contain("Indices output"));
    }

    [Test]
    public void A_missing_kernel_shape_is_rejected() =>
        OperatorTestHarness.AssertRejected("MaxPool", [TestInput.Floats("x", [1, 1, 4, 4], 1)], null, "attribute 'kernel_shape' is required");

    [Test]
    public void A_5D_input_is_rejected() =>
        OperatorTestHarness.AssertRejected("MaxPool", [TestInput.Floats("x", [1, 1, 2, 4, 4], 1)],
            new TestAttributes().Ints("kernel_shape", 2, 2, 2), "X must be 3-D [N,C,L] or 4-D NCHW, got [1,1,2,4,4]");

    [Test]
    public void A_kernel_shape_of_the_wrong_length_is_rejected() =>
        OperatorTestHarness.AssertRejected("MaxPool", [TestInput.Floats("x", [1, 1, 4, 4], 1)],
            new TestAttributes().Ints("kernel_shape", 2), "kernel_shape [2] must have 2 values");

    [Test]
    public void A_zero_stride_is_rejected() =>
        OperatorTestHarness.AssertRejected("MaxPool", [TestInput.Floats("x", [1, 1, 4, 4], 1)],
            new TestAttributes().Ints("kernel_shape", 2, 2).Ints("strides", 0, 1), "strides [0,1] must be positive");

    [Test]
    public void Pads_as_large_as_the_window_are_rejected_as_ORT_does() =>
        OperatorTestHarness.AssertRejected("MaxPool", [TestInput.Floats("x", [1, 1, 4, 4], 1)],
            new TestAttributes().Ints("kernel_shape", 2, 2).Ints("pads", 0, 2, 0, 0), "pads [0,2,0,0] must be smaller than kernel_shape [2,2]");
}
