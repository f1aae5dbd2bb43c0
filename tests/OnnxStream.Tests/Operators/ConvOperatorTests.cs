using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Conv against ONNX Runtime.</summary>
internal sealed class ConvOperatorTests
{
    private const double Relative = 1e-4;
    private const double Absolute = 1e-5;

    private static void AssertConv(int[] x, int[] w, bool bias, TestAttributes attributes, int seed = 1) =>
        OperatorTestHarness.AssertMatchesOrt("Conv",
            [TestInput.Floats("x", x, seed), TestInput.Floats("w", w, seed + 1), bias ? TestInput.Floats("b", [w[0]], seed + 2) : null],
            attributes, relative: Relative, absolute: Absolute);

    [Test]
    public void A_3x3_convolution_with_padding_and_bias_matches_ORT() =>
        AssertConv([1, 3, 8, 8], [4, 3, 3, 3], true,
            new TestAttributes().Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1).Ints("strides", 1, 1).Ints("dilations", 1, 1).Int("group", 1));

    [Test]
    public void The_YOLOv8_stem_stride_2_matches_ORT() =>
        AssertConv([1, 3, 16, 16], [16, 3, 3, 3], true,
            new TestAttributes().Ints("dilations", 1, 1).Int("group", 1).Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1).Ints("strides", 2, 2));

    [Test]
    public void Grouped_convolution_matches_ORT() =>
        AssertConv([2, 6, 7, 6], [9, 2, 3, 3], true, new TestAttributes().Int("group", 3).Ints("pads", 1, 1, 1, 1));

    [Test]
    public void Depthwise_convolution_matches_ORT() =>
        AssertConv([1, 8, 9, 9], [8, 1, 3, 3], true, new TestAttributes().Int("group", 8).Ints("pads", 1, 1, 1, 1).Ints("strides", 2, 2));

    [Test]
    public void Depthwise_with_a_channel_multiplier_matches_ORT() =>
        AssertConv([1, 4, 6, 6], [8, 1, 3, 3], false, new TestAttributes().Int("group", 4));

    [Test]
    public void Asymmetric_pads_match_ORT() =>
        AssertConv([1, 3, 7, 8], [5, 3, 3, 2], true, new TestAttributes().Ints("pads", 0, 1, 2, 1));

    [Test]
    public void Strides_and_dilations_match_ORT() =>
        AssertConv([1, 4, 13, 11], [3, 4, 3, 3], true, new TestAttributes().Ints("strides", 2, 1).Ints("dilations", 2, 3).Ints("pads", 2, 1, 0, 3));

    [Test]
    public void No_bias_matches_ORT() =>
        AssertConv([1, 5, 6, 6], [7, 5, 3, 3], false, new TestAttributes().Ints("kernel_shape", 3, 3));

    [Test]
    public void A_1x1_convolution_matches_ORT() =>
        AssertConv([2, 16, 5, 4], [8, 16, 1, 1], true, new TestAttributes().Ints("kernel_shape", 1, 1));

    [Test]
    public void A_one_output_channel_1x1_convolution_like_YOLOv8_DFL_matches_ORT() =>
        AssertConv([1, 16, 4, 40], [1, 16, 1, 1], false, new TestAttributes().Ints("pads", 0, 0, 0, 0));

    [Test]
    public void A_1x1_spatial_input_matches_ORT() =>
        AssertConv([1, 6, 1, 1], [5, 6, 1, 1], true, new TestAttributes());

    [Test]
    public void A_one_input_channel_convolution_matches_ORT() =>
        AssertConv([1, 1, 9, 9], [4, 1, 3, 3], true, new TestAttributes().Ints("pads", 1, 1, 1, 1));

    [Test]
    public void A_1D_convolution_matches_ORT() =>
        AssertConv([2, 4, 19], [6, 4, 3], true, new TestAttributes().Ints("pads", 1, 2).Ints("strides", 2).Ints("dilations", 2));

    [Test]
    public void A_grouped_1D_convolution_matches_ORT() =>
        AssertConv([1, 6, 12], [6, 2, 5], false, new TestAttributes().Int("group", 3).Ints("kernel_shape", 5).Ints("pads", 2, 2));

    [TestCase("SAME_UPPER")]
    [TestCase("SAME_LOWER")]
    [TestCase("VALID")]
    public void Auto_pad_matches_ORT(string autoPad) =>
        AssertConv([1, 3, 8, 7], [4, 3, 4, 3], true, new TestAttributes().String("auto_pad", autoPad).Ints("strides", 2, 2));

    [Test]
    public void A_1D_kernel_stored_with_a_trailing_1_as_the_converter_writes_it_runs()
    {
        var x = TestInput.Floats("x", [1, 4, 10], 1);
        var w = OperatorTestHarness.RandomFloats(6 * 4 * 3, 2);
        var b = TestInput.Floats("b", [6], 3);
        var attributes = new TestAttributes().Ints("pads", 1, 1).Ints("kernel_shape", 3);
        var expected = OperatorTestHarness.RunOnnxStream("Conv",
            [x, new TestInput("w", ElementType.Float32, [6, 4, 3], w), b], attributes, 1, 1);
        var actual = OperatorTestHarness.RunOnnxStream("Conv",
            [x, new TestInput("w", ElementType.Float32, [6, 4, 3, 1], w), b], attributes, 1, 1);
        Assert.That(actual[0].Item2, Is.EqualTo(expected[0].Item2));
        Assert.That(actual[0].Item3, Is.EqualTo(expected[0].Item3));
    }

    [Test]
    public void Float16_weights_with_float32_activations_give_the_float32_results_to_rounding()
    {
        // What a model folder converted with fp16 holds; ORT has no such Conv, so compare with the same weights in float32.
        var w = Float16Runs.Rounded(OperatorTestHarness.RandomFloats(4 * 3 * 3 * 3, 2));
        var b = Float16Runs.Rounded(OperatorTestHarness.RandomFloats(4, 3));
        var x = TestInput.Floats("x", [1, 3, 6, 6], 1);
        var attributes = new TestAttributes().Ints("pads", 1, 1, 1, 1);
        OperatorTestHarness.AssertMatchesOrt("Conv",
            [x, new TestInput("w", ElementType.Float32, [4, 3, 3, 3], w), new TestInput("b", ElementType.Float32, [4], b)],
            attributes, relative: Relative, absolute: Absolute);
        var expected = OperatorTestHarness.RunOnnxStream("Conv",
            [x, new TestInput("w", ElementType.Float32, [4, 3, 3, 3], w), new TestInput("b", ElementType.Float32, [4], b)], attributes, 1, 2);
        var actual = OperatorTestHarness.RunOnnxStream("Conv",
            [x, Float16Runs.Half("w", [4, 3, 3, 3], w), Float16Runs.Half("b", [4], b)], attributes, 1, 2);
        Assert.That(actual[0].Item1, Is.EqualTo(ElementType.Float32));
        // The direct convolution sums in another order than XNNPACK's.
        Assert.That(actual[0].Item3, Is.EqualTo(expected[0].Item3).Within(1e-5));
    }

    [Test]
    public void Float16_activations_and_weights_give_the_rounded_float32_results() =>
        Float16Runs.AssertMatchesFloat32("Conv",
            [TestInput.Floats("x", [1, 4, 7, 7], 1), TestInput.Floats("w", [6, 2, 3, 3], 2), TestInput.Floats("b", [6], 3)],
            new TestAttributes().Int("group", 2).Ints("pads", 1, 1, 1, 1).Ints("strides", 2, 2), relative: Relative, absolute: Absolute);

    [Test]
    public void A_2D_input_is_rejected() =>
        OperatorTestHarness.AssertRejected("Conv", [TestInput.Floats("x", [3, 8], 1), TestInput.Floats("w", [4, 3, 3], 2)],
            null, "X must be 3-D [N,C,L] or 4-D NCHW, got [3,8]");

    [Test]
    public void Weights_of_the_wrong_rank_are_rejected() =>
        OperatorTestHarness.AssertRejected("Conv", [TestInput.Floats("x", [1, 3, 8, 8], 1), TestInput.Floats("w", [4, 3, 3], 2)],
            null, "W must be 4-D");

    [Test]
    public void Weights_with_the_wrong_channel_count_are_rejected() =>
        OperatorTestHarness.AssertRejected("Conv", [TestInput.Floats("x", [1, 4, 8, 8], 1), TestInput.Floats("w", [4, 3, 3, 3], 2)],
            new TestAttributes().Int("group", 1), "input channels per group");

    [Test]
    public void A_kernel_shape_that_disagrees_with_W_is_rejected() =>
        OperatorTestHarness.AssertRejected("Conv", [TestInput.Floats("x", [1, 3, 8, 8], 1), TestInput.Floats("w", [4, 3, 3, 3], 2)],
            new TestAttributes().Ints("kernel_shape", 5, 5), "kernel_shape [5,5] does not match W [4,3,3,3]");

    [Test]
    public void Pads_of_the_wrong_length_are_rejected() =>
        OperatorTestHarness.AssertRejected("Conv", [TestInput.Floats("x", [1, 3, 8, 8], 1), TestInput.Floats("w", [4, 3, 3, 3], 2)],
            new TestAttributes().Ints("pads", 1, 1), "pads has 2 values");

    [Test]
    public void An_unknown_auto_pad_is_rejected() =>
        OperatorTestHarness.AssertRejected("Conv", [TestInput.Floats("x", [1, 3, 8, 8], 1), TestInput.Floats("w", [4, 3, 3, 3], 2)],
            new TestAttributes().String("auto_pad", "SAME"), "auto_pad 'SAME'");

    [Test]
    public void A_bias_of_the_wrong_size_is_rejected() =>
        OperatorTestHarness.AssertRejected("Conv",
            [TestInput.Floats("x", [1, 3, 8, 8], 1), TestInput.Floats("w", [4, 3, 3, 3], 2), TestInput.Floats("b", [3], 3)],
            null, "B must be 1-D [4], got [3]");

    [Test]
    public void A_kernel_larger_than_the_input_is_rejected() =>
        OperatorTestHarness.AssertRejected("Conv", [TestInput.Floats("x", [1, 3, 2, 2], 1), TestInput.Floats("w", [4, 3, 3, 3], 2)],
            null, "is larger than spatial dimension 0");
}

/// <summary>
/// float16 checks for operators that compute in float32: ORT's CPU provider lacks most float16 kernels,
/// so a float16 run is compared with the float32 run (itself checked against ORT) on the same values.
/// </summary>
internal static class Float16Runs
{
    public static float[] Rounded(float[] values) => Array.ConvertAll(values, v => (float)(Half)v);

    public static TestInput Half(string name, int[] shape, float[] values) =>
        new(name, ElementType.Float16, shape, Array.ConvertAll(values, v => (Half)v));

    /// <summary>
    /// Rounds every float32 input to float16 values; checks the float32 run against ORT, then that the
    /// all-float16 run returns float16 equal to the float32 results rounded to float16.
    /// </summary>
    public static void AssertMatchesFloat32(string opType, IReadOnlyList<TestInput?> inputs, TestAttributes attributes,
        double relative = 1e-5, double absolute = 1e-6)
    {
        var rounded = inputs.Select(i => i is { Type: ElementType.Float32 } ? i with { Data = Rounded((float[])i.Data) } : i).ToList();
        var halves = rounded.Select(i => i is { Type: ElementType.Float32 } ? Half(i.Name, i.Shape, (float[])i.Data) : i).ToList();
        OperatorTestHarness.AssertMatchesOrt(opType, rounded, attributes, relative: relative, absolute: absolute);
        foreach (var threads in new[] { 1, 2 })
        {
            var expected = OperatorTestHarness.RunOnnxStream(opType, rounded, attributes, 1, threads)[0];
            var actual = OperatorTestHarness.RunOnnxStream(opType, halves, attributes, 1, threads)[0];
            Assert.That(actual.Item1, Is.EqualTo(ElementType.Float16), $"{opType}: element type");
            Assert.That(actual.Item2, Is.EqualTo(expected.Item2), $"{opType}: shape");
            var want = expected.Item3.Select(v => (double)(Half)v).ToArray();
            Assert.That(actual.Item3, Is.EqualTo(want), $"{opType} (threads {threads}): float16 results");
        }
    }
}
