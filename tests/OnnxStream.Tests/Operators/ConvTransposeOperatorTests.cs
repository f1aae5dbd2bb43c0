namespace OnnxStream.Tests.Operators;

/// <summary>
/// ConvTranspose against ONNX Runtime. float32 tolerance 1e-4 relative + 1e-5 absolute, as for Conv (sums of
/// C/group·kH·kW products, accumulated in another order, can cancel to near 0); float16 2e-3 relative + 2e-3
/// absolute against ORT's float16 kernel (one or two float16 ulps), and float16 runs must equal our float32
/// runs rounded to float16.
/// </summary>
internal sealed class ConvTransposeOperatorTests
{
    private const double Relative = 1e-4;
    private const double Absolute = 1e-5;
    private const double HalfRelative = 2e-3;
    private const double HalfAbsolute = 2e-3;

    private static void AssertConvTranspose(int[] x, int[] w, int group, bool bias, TestAttributes attributes, int seed = 1) =>
        OperatorTestHarness.AssertMatchesOrt("ConvTranspose", Inputs(x, w, group, bias, seed), attributes, relative: Relative, absolute: Absolute);

    private static TestInput?[] Inputs(int[] x, int[] w, int group, bool bias, int seed) =>
        [OperatorInputs.F32("x", x, seed), OperatorInputs.F32("w", w, seed + 1), bias ? OperatorInputs.F32("b", [w[1] * group], seed + 2) : null];

    private static IEnumerable<TestCaseData> Combinations()
    {
        foreach (var stride in new[] { 1, 2 })
            foreach (var pad in new[] { 0, 1 })
                foreach (var dilation in new[] { 1, 2 })
                    foreach (var group in new[] { 1, 2 })
                        foreach (var bias in new[] { false, true })
                            foreach (var outputPadding in stride == 1 ? new[] { 0 } : new[] { 0, 1 })
                                yield return new TestCaseData(stride, pad, dilation, group, bias, outputPadding)
                                    .SetArgDisplayNames($"stride {stride}", $"pad {pad}", $"dilation {dilation}", $"group {group}",
                                        bias ? "bias" : "no bias", $"output_padding {outputPadding}");
    }

    [TestCaseSource(nameof(Combinations))]
    public void Attribute_combinations_match_ORT(int stride, int pad, int dilation, int group, bool bias, int outputPadding)
    {
        var attributes = new TestAttributes().Ints("strides", stride, stride).Ints("pads", pad, pad, pad, pad)
            .Ints("dilations", dilation, dilation).Int("group", group);
        if (outputPadding != 0) attributes.Ints("output_padding", outputPadding, outputPadding);
        AssertConvTranspose([2, 4, 5, 6], [4, 3, 3, 3], group, bias, attributes);
        // 1-D, with the same attributes.
        var oneD = new TestAttributes().Ints("strides", stride).Ints("pads", pad, pad).Ints("dilations", dilation).Int("group", group);
        if (outputPadding != 0) oneD.Ints("output_padding", outputPadding);
        AssertConvTranspose([2, 4, 7], [4, 3, 3], group, bias, oneD);
    }

    [Test]
    public void The_default_attributes_match_ORT() =>
        AssertConvTranspose([1, 3, 4, 5], [3, 2, 3, 3], 1, false, new TestAttributes());

    [Test]
    public void A_2x2_stride_2_upsampling_matches_ORT() =>
        AssertConvTranspose([1, 16, 8, 8], [16, 8, 2, 2], 1, true, new TestAttributes().Ints("kernel_shape", 2, 2).Ints("strides", 2, 2));

    [Test]
    public void A_4x4_stride_2_pad_1_upsampling_matches_ORT() =>
        AssertConvTranspose([2, 6, 7, 5], [6, 5, 4, 4], 1, true, new TestAttributes().Ints("kernel_shape", 4, 4).Ints("strides", 2, 2).Ints("pads", 1, 1, 1, 1));

    [Test]
    public void Asymmetric_pads_strides_dilations_and_kernel_match_ORT() =>
        AssertConvTranspose([1, 3, 5, 4], [3, 2, 3, 2], 1, true,
            new TestAttributes().Ints("strides", 3, 2).Ints("pads", 2, 0, 1, 3).Ints("dilations", 1, 2).Ints("output_padding", 1, 0));

    [Test]
    public void Output_padding_up_to_the_stride_matches_ORT() =>
        AssertConvTranspose([1, 2, 4, 4], [2, 3, 3, 3], 1, true,
            new TestAttributes().Ints("strides", 3, 4).Ints("dilations", 3, 2).Ints("output_padding", 2, 3));

    [Test]
    public void Three_groups_match_ORT() =>
        AssertConvTranspose([2, 6, 5, 5], [6, 2, 3, 3], 3, true, new TestAttributes().Int("group", 3).Ints("strides", 2, 2).Ints("pads", 1, 0, 1, 0));

    [Test]
    public void Depthwise_matches_ORT() =>
        AssertConvTranspose([1, 4, 6, 5], [4, 1, 3, 3], 4, true, new TestAttributes().Int("group", 4).Ints("strides", 2, 2).Ints("pads", 1, 1, 1, 1));

    [Test]
    public void A_1x1_kernel_matches_ORT() =>
        AssertConvTranspose([2, 8, 3, 4], [8, 5, 1, 1], 1, true, new TestAttributes());

    [Test]
    public void A_1x1_kernel_with_stride_2_leaves_gaps_of_bias() =>
        AssertConvTranspose([1, 3, 3, 4], [3, 2, 1, 1], 1, true, new TestAttributes().Ints("strides", 2, 2));

    [Test]
    public void A_1x1_input_matches_ORT() =>
        AssertConvTranspose([1, 5, 1, 1], [5, 4, 3, 2], 1, true, new TestAttributes().Ints("strides", 2, 2));

    [TestCase(9, 7)]
    [TestCase(10, 8)]
    [TestCase(11, 8)]
    [TestCase(6, 4)]
    [TestCase(7, 5)]
    [TestCase(3, 3)]
    public void Output_shape_matches_ORT(long height, long width) =>
        AssertConvTranspose([1, 2, 3, 3], [2, 3, 3, 3], 1, true, new TestAttributes().Ints("strides", 3, 2).Ints("output_shape", height, width));

    [Test]
    public void Output_shape_overrides_pads_and_uses_output_padding() =>
        AssertConvTranspose([1, 2, 4, 3], [2, 2, 3, 3], 1, true,
            new TestAttributes().Ints("strides", 2, 2).Ints("pads", 1, 1, 1, 1).Ints("output_padding", 1, 1).Ints("output_shape", 7, 6));

    [TestCase("SAME_UPPER")]
    [TestCase("SAME_LOWER")]
    [TestCase("VALID")]
    public void Auto_pad_matches_ORT(string autoPad)
    {
        AssertConvTranspose([1, 2, 4, 3], [2, 3, 3, 4], 1, true, new TestAttributes().Ints("strides", 2, 2).String("auto_pad", autoPad));
        AssertConvTranspose([1, 2, 4, 3], [2, 3, 3, 4], 1, false, new TestAttributes().Ints("strides", 2, 3).Ints("dilations", 2, 1).String("auto_pad", autoPad));
        AssertConvTranspose([1, 2, 5], [2, 3, 4], 1, true, new TestAttributes().Ints("strides", 1).String("auto_pad", autoPad));
    }

    [TestCase("SAME_UPPER")]
    [TestCase("SAME_LOWER")]
    public void Auto_pad_with_kernels_smaller_than_the_stride_matches_ORT(string autoPad)
    {
        AssertConvTranspose([1, 2, 4, 3], [2, 3, 1, 2], 1, true, new TestAttributes().Ints("strides", 2, 3).String("auto_pad", autoPad));
        AssertConvTranspose([1, 2, 5], [2, 3, 5], 1, true, new TestAttributes().Ints("strides", 2).Ints("output_padding", 1).String("auto_pad", autoPad));
    }

    [TestCase("SAME_UPPER")]
    [TestCase("SAME_LOWER")]
    public void Auto_pad_with_output_shape_matches_ORT(string autoPad) =>
        AssertConvTranspose([1, 2, 4, 3], [2, 3, 3, 3], 1, true,
            new TestAttributes().Ints("strides", 2, 2).String("auto_pad", autoPad).Ints("output_shape", 8, 5));

    [Test]
    public void A_1D_transposed_convolution_matches_ORT() =>
        AssertConvTranspose([2, 3, 11], [3, 4, 5], 1, true,
            new TestAttributes().Ints("kernel_shape", 5).Ints("strides", 3).Ints("pads", 2, 1).Ints("dilations", 2).Ints("output_padding", 1));

    [Test]
    public void A_1D_output_shape_matches_ORT() =>
        AssertConvTranspose([1, 4, 6], [4, 2, 3], 2, false, new TestAttributes().Int("group", 2).Ints("strides", 2).Ints("output_shape", 12));

    [Test]
    public void A_large_one_runs_in_several_channel_slices_and_in_parallel() =>
        AssertConvTranspose([1, 8, 64, 64], [8, 80, 4, 4], 1, true, new TestAttributes().Ints("strides", 2, 2).Ints("pads", 1, 1, 1, 1));

    [Test]
    public void Float16_matches_ORT_and_float32()
    {
        var attributes = new TestAttributes().Ints("strides", 2, 2).Ints("pads", 1, 0, 1, 1).Int("group", 2).Ints("output_padding", 1, 0);
        var oneD = new TestAttributes().Ints("strides", 2);
        Float16Runs.AssertMatchesFloat32("ConvTranspose", Inputs([2, 4, 5, 6], [4, 3, 3, 3], 2, true, 4), attributes, Relative, Absolute);
        Float16Runs.AssertMatchesFloat32("ConvTranspose", Inputs([1, 3, 9], [3, 2, 4], 1, false, 5), oneD, Relative, Absolute);
        OperatorTestHarness.AssertMatchesOrt("ConvTranspose", Half(Inputs([2, 4, 5, 6], [4, 3, 3, 3], 2, true, 4)), attributes,
            relative: HalfRelative, absolute: HalfAbsolute);
        OperatorTestHarness.AssertMatchesOrt("ConvTranspose", Half(Inputs([1, 16, 6, 7], [16, 8, 3, 3], 1, true, 6)),
            new TestAttributes().Ints("pads", 1, 1, 1, 1).Ints("strides", 2, 2), relative: HalfRelative, absolute: HalfAbsolute);
        OperatorTestHarness.AssertMatchesOrt("ConvTranspose", Half(Inputs([1, 3, 9], [3, 2, 4], 1, false, 5)), oneD,
            relative: HalfRelative, absolute: HalfAbsolute);
    }

    private static TestInput?[] Half(TestInput?[] inputs) =>
        inputs.Select(i => i is null ? null : Float16Runs.Half(i.Name, i.Shape, (float[])i.Data)).ToArray();

    [Test]
    public void Errors_are_reported()
    {
        TestInput?[] Of(int[] x, int[] w, int[]? b = null) =>
            [OperatorInputs.F32("x", x, 1), OperatorInputs.F32("w", w, 2), b is null ? null : OperatorInputs.F32("b", b, 3)];
        void Rejected(TestInput?[] inputs, TestAttributes? attributes, string message) =>
            OperatorTestHarness.AssertRejected("ConvTranspose", inputs, attributes, message);

        Rejected(Of([1, 4, 5, 5], [3, 2, 3, 3]), null, "W [3,2,3,3] must have X's 4 input channels in dimension 0");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3]), null, "W must be 4-D like X [1,4,5,5], got [4,2,3]");
        Rejected(Of([1, 3, 5, 5], [3, 2, 3, 3]), new TestAttributes().Int("group", 2), "X's 3 input channels are not divisible by group 2");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3]), new TestAttributes().Int("group", 0), "group 0 must be between 1 and the 4 input channels");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3], [3]), null, "B must be 1-D [2], got [3]");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3]), new TestAttributes().Ints("kernel_shape", 2, 2), "kernel_shape [2,2] does not match W [4,2,3,3]");
        Rejected(Of([1, 4, 5, 5, 5], [4, 2, 3, 3, 3]), null, "only 1-D and 2-D transposed convolutions are supported");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3]), new TestAttributes().Ints("strides", 0, 1), "strides [0,1] must be positive");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3]), new TestAttributes().Ints("pads", 1, 1), "pads has 2 values [1,1]; 4 expected");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3]), new TestAttributes().Ints("output_padding", -1, 0), "output_padding [-1,0] must be non-negative");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3]), new TestAttributes().Ints("output_shape", 1, 9, 9), "output_shape [1,9,9] must have 2 values");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3]), new TestAttributes().Ints("output_shape", 1, 4, 9, 9), "output_shape [1,4,9,9] must have 2 values");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3]), new TestAttributes().Ints("output_padding", 1, 0),
            "output spatial dimension 0 of size 8 is inconsistent with X's 5 (a convolution with this kernel, stride 1 and pads would give 6)");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3]), new TestAttributes().Ints("dilations", 2, 2).Ints("output_padding", 0, 1),
            "output spatial dimension 1 of size 10 is inconsistent with X's 5");
        Rejected(Of([1, 4, 3, 3], [4, 2, 3, 3]), new TestAttributes().Ints("strides", 2, 2).Ints("output_shape", 7, 9),
            "output spatial dimension 1 of size 9 is inconsistent with X's 3");
        Rejected(Of([1, 4, 2, 2], [4, 2, 3, 3]), new TestAttributes().Ints("pads", 2, 0, 2, 0), "output spatial dimension 0 would be 0");
        Rejected(Of([1, 4, 5, 5], [4, 2, 3, 3]), new TestAttributes().String("auto_pad", "SAME"), "auto_pad 'SAME' is not one of");
        Rejected([OperatorInputs.I64("x", [1, 4, 5, 5], 1), OperatorInputs.F32("w", [4, 2, 3, 3], 2)], null, "X must be float32 or float16, not Int64");
    }
}
