using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Resize against ONNX Runtime.</summary>
internal sealed class ResizeOperatorTests
{
    private static TestInput Scales(params float[] values) => new("scales", ElementType.Float32, [values.Length], values);

    private static TestInput Sizes(params long[] values) => new("sizes", ElementType.Int64, [values.Length], values);

    private static void AssertWithScales(int[] x, float[] scales, TestAttributes attributes, double tolerance = 0) =>
        OperatorTestHarness.AssertMatchesOrt("Resize", [TestInput.Floats("x", x, 1), null, Scales(scales)], attributes,
            relative: tolerance, absolute: tolerance);

    private static void AssertWithSizes(int[] x, long[] sizes, TestAttributes attributes, double tolerance = 0) =>
        OperatorTestHarness.AssertMatchesOrt("Resize", [TestInput.Floats("x", x, 1), null, null, Sizes(sizes)], attributes,
            relative: tolerance, absolute: tolerance);

    private static TestAttributes Nearest(string transform, string nearestMode) =>
        new TestAttributes().String("mode", "nearest").String("coordinate_transformation_mode", transform).String("nearest_mode", nearestMode);

    private static TestAttributes Linear(string transform) =>
        new TestAttributes().String("mode", "linear").String("coordinate_transformation_mode", transform);

    [Test]
    public void YOLOv8_nearest_asymmetric_floor_x2_matches_ORT() =>
        AssertWithScales([1, 8, 5, 6], [1, 1, 2, 2],
            new TestAttributes().String("coordinate_transformation_mode", "asymmetric").Float("cubic_coeff_a", -0.75f)
                .String("mode", "nearest").String("nearest_mode", "floor"));

    [Test]
    public void Stable_Diffusion_nearest_x2_with_default_attributes_matches_ORT() =>
        AssertWithScales([1, 16, 8, 8], [1, 1, 2, 2], new TestAttributes().String("mode", "nearest"));

    [Test]
    public void A_large_nearest_x2_runs_in_parallel_and_matches_ORT() =>
        AssertWithScales([1, 32, 32, 32], [1, 1, 2, 2], new TestAttributes().String("mode", "nearest"));

    [Test]
    public void Nearest_half_pixel_round_prefer_floor_with_sizes_matches_ORT() =>
        AssertWithSizes([1, 3, 4, 5], [1, 3, 7, 9], Nearest("half_pixel", "round_prefer_floor"));

    [TestCase("half_pixel", "round_prefer_ceil")]
    [TestCase("asymmetric", "ceil")]
    [TestCase("align_corners", "round_prefer_floor")]
    [TestCase("pytorch_half_pixel", "round_prefer_floor")]
    [TestCase("half_pixel_symmetric", "round_prefer_floor")]
    public void Nearest_modes_and_transformations_match_ORT(string transform, string nearestMode)
    {
        // half_pixel_symmetric is new in opset 19, which dropped tf_half_pixel_for_nearest.
        var opset = transform == "half_pixel_symmetric" ? 19 : 17;
        OperatorTestHarness.AssertMatchesOrt("Resize", [TestInput.Floats("x", [1, 2, 5, 4], 1), null, Scales(1, 1, 1.5f, 2.5f)],
            Nearest(transform, nearestMode), relative: 0, absolute: 0, opset: opset);
        OperatorTestHarness.AssertMatchesOrt("Resize", [TestInput.Floats("x", [1, 2, 9, 8], 2), null, null, Sizes(1, 2, 4, 3)],
            Nearest(transform, nearestMode), relative: 0, absolute: 0, opset: opset);
    }

    [Test]
    public void Tf_half_pixel_for_nearest_follows_the_ONNX_formula()
    {
        // ONNX Runtime 1.31 no longer implements it; x_original = (x + 0.5) / scale (ONNX opsets 11-18).
        var result = OperatorTestHarness.RunOnnxStream("Resize",
            [new TestInput("x", ElementType.Float32, [1, 2], new float[] { 10, 20 }), null, Scales(1, 3)],
            Nearest("tf_half_pixel_for_nearest", "round_prefer_ceil"), 1, 1)[0];
        Assert.That(result.Item3, Is.EqualTo(new double[] { 10, 20, 20, 20, 20, 20 }));
        result = OperatorTestHarness.RunOnnxStream("Resize",
            [new TestInput("x", ElementType.Float32, [1, 4], new float[] { 0, 1, 2, 3 }), null, null, Sizes(1, 2)],
            Nearest("tf_half_pixel_for_nearest", "floor"), 1, 1)[0];
        Assert.That(result.Item3, Is.EqualTo(new double[] { 1, 3 }));
    }

    [TestCase("nearest", 2f, 3f)]
    [TestCase("nearest", 0.5f, 0.7f)]
    [TestCase("linear", 2f, 1.5f)]
    public void The_opset_10_form_with_two_inputs_matches_ORT(string mode, float scaleH, float scaleW) =>
        OperatorTestHarness.AssertMatchesOrt("Resize", [TestInput.Floats("x", [1, 2, 6, 7], 1), Scales(1, 1, scaleH, scaleW)],
            new TestAttributes().String("mode", mode), relative: 1e-5, absolute: 1e-6, opset: 10);

    [Test]
    public void Nearest_downscale_matches_ORT() =>
        AssertWithScales([2, 3, 8, 9], [1, 1, 0.5f, 0.34f], new TestAttributes().String("mode", "nearest"));

    [Test]
    public void Nearest_on_a_3D_input_matches_ORT() =>
        AssertWithScales([2, 3, 5], [1, 2, 3], Nearest("asymmetric", "floor"));

    [TestCase("half_pixel")]
    [TestCase("align_corners")]
    [TestCase("asymmetric")]
    [TestCase("pytorch_half_pixel")]
    public void Linear_upscale_matches_ORT(string transform) =>
        AssertWithScales([1, 3, 5, 6], [1, 1, 2, 1.5f], Linear(transform), 1e-5);

    [TestCase("half_pixel")]
    [TestCase("align_corners")]
    public void Linear_downscale_with_sizes_matches_ORT(string transform) =>
        AssertWithSizes([2, 2, 9, 10], [2, 2, 4, 3], Linear(transform), 1e-5);

    [Test]
    public void Linear_on_a_2D_input_matches_ORT() =>
        AssertWithScales([5, 7], [2, 0.5f], Linear("half_pixel"), 1e-5);

    [Test]
    public void Empty_scales_with_sizes_as_opset_11_requires_match_ORT() =>
        OperatorTestHarness.AssertMatchesOrt("Resize",
            [TestInput.Floats("x", [1, 3, 4, 4], 1), TestInput.Floats("roi", [0], 1), new TestInput("scales", ElementType.Float32, [0], Array.Empty<float>()), Sizes(1, 3, 8, 6)],
            new TestAttributes().String("mode", "nearest"), relative: 0, absolute: 0, opset: 11);

    [Test]
    public void Opset_18_axes_and_keep_aspect_ratio_policy_match_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("Resize", [TestInput.Floats("x", [1, 3, 4, 6], 1), null, null, Sizes(8, 9)],
            new TestAttributes().String("mode", "linear").Ints("axes", 2, 3).String("keep_aspect_ratio_policy", "not_larger"),
            relative: 1e-5, absolute: 1e-5, opset: 18);
        OperatorTestHarness.AssertMatchesOrt("Resize", [TestInput.Floats("x", [1, 3, 4, 6], 1), null, Scales(2, 3)],
            new TestAttributes().String("mode", "nearest").Ints("axes", -1, 2), relative: 0, absolute: 0, opset: 18);
    }

    [Test]
    public void Float16_scales_as_fp16_model_folders_store_them_give_the_float32_results()
    {
        var x = TestInput.Floats("x", [1, 2, 3, 3], 1);
        var attributes = new TestAttributes().String("mode", "nearest");
        var expected = OperatorTestHarness.RunOnnxStream("Resize", [x, null, Scales(1, 1, 2, 2)], attributes, 1, 1)[0];
        var actual = OperatorTestHarness.RunOnnxStream("Resize", [x, null, Float16Runs.Half("scales", [4], [1, 1, 2, 2])], attributes, 1, 1)[0];
        Assert.That(actual.Item2, Is.EqualTo(expected.Item2));
        Assert.That(actual.Item3, Is.EqualTo(expected.Item3));
    }

    [Test]
    public void Float16_nearest_and_linear_match_ORT()
    {
        var x = Float16Runs.Half("x", [1, 2, 4, 5], OperatorTestHarness.RandomFloats(40, 3));
        OperatorTestHarness.AssertMatchesOrt("Resize", [x, null, Scales(1, 1, 2, 2)], new TestAttributes().String("mode", "nearest"),
            relative: 0, absolute: 0);
        Float16Runs.AssertMatchesFloat32("Resize", [TestInput.Floats("x", [1, 2, 4, 5], 3), null, Scales(1, 1, 1.5f, 2)],
            Linear("half_pixel"), relative: 1e-5, absolute: 1e-5);
    }

    [Test]
    public void Int32_and_uint8_nearest_match_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("Resize",
            [new TestInput("x", ElementType.Int32, [1, 1, 2, 3], new[] { 1, -2, 3, 2_000_000_000, 5, 6 }), null, Scales(1, 1, 2, 3)],
            new TestAttributes().String("mode", "nearest"), relative: 0, absolute: 0);
        OperatorTestHarness.AssertMatchesOrt("Resize",
            [new TestInput("x", ElementType.UInt8, [1, 1, 2, 3], new byte[] { 1, 200, 3, 4, 255, 6 }), null, Scales(1, 1, 1.5f, 2)],
            new TestAttributes().String("mode", "nearest"), relative: 0, absolute: 0);
    }

    [Test]
    public void Int64_nearest_copies_whole_elements()
    {
        // ORT has no int64 Resize; the expected values are picked by hand (asymmetric floor x2 on the last axis).
        var result = OperatorTestHarness.RunOnnxStream("Resize",
            [new TestInput("x", ElementType.Int64, [1, 3], new long[] { 1, -2, 4_000_000_000 }), null, Scales(1, 2)],
            Nearest("asymmetric", "floor"), 1, 1)[0];
        Assert.That(result.Item1, Is.EqualTo(ElementType.Int64));
        Assert.That(result.Item3, Is.EqualTo(new double[] { 1, 1, -2, -2, 4_000_000_000, 4_000_000_000 }));
    }

    [Test]
    public void Cubic_is_rejected() =>
        OperatorTestHarness.AssertRejected("Resize", [TestInput.Floats("x", [1, 1, 4, 4], 1), null, Scales(1, 1, 2, 2)],
            new TestAttributes().String("mode", "cubic"), "mode 'cubic' is not supported");

    [Test]
    public void Tf_crop_and_resize_is_rejected() =>
        OperatorTestHarness.AssertRejected("Resize", [TestInput.Floats("x", [1, 1, 4, 4], 1), null, Scales(1, 1, 2, 2)],
            new TestAttributes().String("coordinate_transformation_mode", "tf_crop_and_resize"), "'tf_crop_and_resize' is not supported");

    [Test]
    public void Scales_of_the_wrong_length_are_rejected() =>
        OperatorTestHarness.AssertRejected("Resize", [TestInput.Floats("x", [1, 1, 4, 4], 1), null, Scales(2, 2)],
            null, "scales has 2 values [2,2]; X [1,1,4,4] needs 4");

    [Test]
    public void Neither_scales_nor_sizes_is_rejected() =>
        OperatorTestHarness.AssertRejected("Resize", [TestInput.Floats("x", [1, 1, 4, 4], 1), null, null, null],
            null, "needs either scales (input 2) or sizes (input 3), got neither");

    [Test]
    public void Both_scales_and_sizes_are_rejected() =>
        OperatorTestHarness.AssertRejected("Resize", [TestInput.Floats("x", [1, 1, 4, 4], 1), null, Scales(1, 1, 2, 2), Sizes(1, 1, 8, 8)],
            null, "not both");

    [Test]
    public void A_non_positive_scale_is_rejected() =>
        OperatorTestHarness.AssertRejected("Resize", [TestInput.Floats("x", [1, 1, 4, 4], 1), null, Scales(1, 1, 0, 2)],
            null, "must be positive");

    [Test]
    public void An_unknown_nearest_mode_is_rejected() =>
        OperatorTestHarness.AssertRejected("Resize", [TestInput.Floats("x", [1, 1, 4, 4], 1), null, Scales(1, 1, 2, 2)],
            new TestAttributes().String("nearest_mode", "nearest"), "nearest_mode 'nearest'");

    [Test]
    public void Linear_on_int64_is_rejected() =>
        OperatorTestHarness.AssertRejected("Resize",
            [new TestInput("x", ElementType.Int64, [1, 1, 1, 2], new long[] { 1, 2 }), null, Scales(1, 1, 2, 2)],
            new TestAttributes().String("mode", "linear"), "linear mode needs float32 or float16 X, not Int64");
}
