using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// AveragePool and GlobalAveragePool against ONNX Runtime. float32 tolerance 1e-5 relative + 1e-6 absolute
/// (sums of a few values, summed in another order); float16 1e-3 relative + 1e-3 absolute (one float16 ulp).
/// </summary>
internal sealed class AveragePoolOperatorTests
{
    /// <summary>Name, X shape, attributes (without count_include_pad), opset.</summary>
    private static readonly (string Name, int[] X, Func<TestAttributes> Attributes, int Opset)[] PoolCases =
    [
        ("2x2 stride 2", [2, 3, 8, 6], () => new TestAttributes().Ints("kernel_shape", 2, 2).Ints("strides", 2, 2), 11),
        ("3x3 pad 1", [1, 4, 7, 9], () => new TestAttributes().Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1), 17),
        ("3x3 stride 2 pad 1 ceil", [1, 3, 6, 9], () => new TestAttributes().Ints("kernel_shape", 3, 3).Ints("strides", 2, 2).Ints("pads", 1, 1, 1, 1).Int("ceil_mode", 1), 19),
        ("window past the padded end", [1, 2, 6, 6], () => new TestAttributes().Ints("kernel_shape", 3, 3).Ints("strides", 2, 2).Ints("pads", 1, 1, 1, 1).Int("ceil_mode", 1), 19),
        ("2x2 stride 2 ceil odd sizes", [1, 3, 5, 7], () => new TestAttributes().Ints("kernel_shape", 2, 2).Ints("strides", 2, 2).Int("ceil_mode", 1), 17),
        ("ceil drops a window starting in the end padding", [1, 2, 5, 5], () => new TestAttributes().Ints("kernel_shape", 2, 2).Ints("strides", 3, 3).Ints("pads", 0, 0, 1, 1).Int("ceil_mode", 1), 19),
        ("asymmetric pads and strides", [2, 5, 9, 10], () => new TestAttributes().Ints("kernel_shape", 3, 2).Ints("strides", 2, 3).Ints("pads", 1, 0, 0, 1), 17),
        ("asymmetric pads ceil", [1, 2, 8, 7], () => new TestAttributes().Ints("kernel_shape", 3, 4).Ints("strides", 3, 2).Ints("pads", 2, 0, 1, 3).Int("ceil_mode", 1), 19),
        ("SAME_UPPER", [1, 3, 7, 8], () => new TestAttributes().Ints("kernel_shape", 3, 3).Ints("strides", 2, 2).String("auto_pad", "SAME_UPPER"), 17),
        ("SAME_LOWER", [1, 3, 7, 8], () => new TestAttributes().Ints("kernel_shape", 3, 3).Ints("strides", 2, 2).String("auto_pad", "SAME_LOWER"), 17),
        ("SAME_UPPER even kernel", [1, 2, 6, 5], () => new TestAttributes().Ints("kernel_shape", 4, 2).String("auto_pad", "SAME_UPPER"), 17),
        ("SAME_LOWER even kernel", [1, 2, 6, 5], () => new TestAttributes().Ints("kernel_shape", 4, 2).String("auto_pad", "SAME_LOWER"), 17),
        ("VALID ceil", [1, 2, 7, 8], () => new TestAttributes().Ints("kernel_shape", 3, 3).Ints("strides", 2, 3).String("auto_pad", "VALID").Int("ceil_mode", 1), 17),
        ("1x1 stride 2", [1, 4, 7, 8], () => new TestAttributes().Ints("kernel_shape", 1, 1).Ints("strides", 2, 2), 17),
        ("dilations", [1, 3, 11, 13], () => new TestAttributes().Ints("kernel_shape", 2, 3).Ints("dilations", 2, 2), 19),
        ("dilations with pads", [1, 3, 9, 9], () => new TestAttributes().Ints("kernel_shape", 3, 3).Ints("dilations", 2, 2).Ints("pads", 2, 1, 2, 1), 19),
        ("dilations with pads and ceil", [1, 2, 10, 9], () => new TestAttributes().Ints("kernel_shape", 3, 2).Ints("dilations", 2, 3).Ints("strides", 2, 2).Ints("pads", 1, 1, 2, 1).Int("ceil_mode", 1), 19),
        ("1-D", [2, 3, 17], () => new TestAttributes().Ints("kernel_shape", 3).Ints("strides", 2).Ints("pads", 1, 1), 17),
        ("1-D ceil", [2, 3, 16], () => new TestAttributes().Ints("kernel_shape", 4).Ints("strides", 3).Ints("pads", 1, 2).Int("ceil_mode", 1), 19),
        ("1-D SAME_LOWER", [1, 2, 9], () => new TestAttributes().Ints("kernel_shape", 4).Ints("strides", 2).String("auto_pad", "SAME_LOWER"), 17),
        ("3-D", [1, 2, 5, 6, 7], () => new TestAttributes().Ints("kernel_shape", 2, 3, 2).Ints("strides", 1, 2, 2).Ints("pads", 1, 1, 0, 0, 1, 1), 17),
        ("3-D ceil", [1, 2, 5, 6, 7], () => new TestAttributes().Ints("kernel_shape", 3, 3, 3).Ints("strides", 2, 2, 2).Ints("pads", 1, 1, 1, 1, 1, 1).Int("ceil_mode", 1), 19),
        ("large, in parallel", [1, 64, 40, 40], () => new TestAttributes().Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1), 17),
    ];

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var (name, x, attributes, opset) in PoolCases)
            foreach (var include in new long?[] { null, 0, 1 })
                yield return new TestCaseData(name, x, attributes, opset, include)
                    .SetArgDisplayNames(name, include is null ? "default" : $"count_include_pad={include}");
    }

    [TestCaseSource(nameof(Cases))]
    public void AveragePool_matches_ORT(string name, int[] x, Func<TestAttributes> attributes, int opset, long? countIncludePad)
    {
        var a = attributes();
        if (countIncludePad is { } c) a.Int("count_include_pad", c);
        OperatorTestHarness.AssertMatchesOrt("AveragePool", [OperatorInputs.F32("x", x, 1)], a, opset: opset);
    }

    [TestCase(0)]
    [TestCase(1)]
    public void AveragePool_float16_matches_ORT(long countIncludePad)
    {
        AssertFloat16("AveragePool", [1, 4, 9, 8], new TestAttributes().Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1)
            .Ints("strides", 2, 2).Int("ceil_mode", 1).Int("count_include_pad", countIncludePad));
        AssertFloat16("AveragePool", [2, 3, 12], new TestAttributes().Ints("kernel_shape", 4).Ints("pads", 1, 2)
            .Ints("strides", 3).Int("count_include_pad", countIncludePad));
    }

    [Test]
    public void AveragePool_errors_are_reported()
    {
        var x = OperatorInputs.F32("x", [1, 1, 4, 4], 1);
        OperatorTestHarness.AssertRejected("AveragePool", [x], null, "attribute 'kernel_shape' is required");
        OperatorTestHarness.AssertRejected("AveragePool", [x], new TestAttributes().Ints("kernel_shape", 2), "kernel_shape [2] must have 2 values");
        OperatorTestHarness.AssertRejected("AveragePool", [x], new TestAttributes().Ints("kernel_shape", 2, 0), "kernel_shape [2,0] must be positive");
        OperatorTestHarness.AssertRejected("AveragePool", [x], new TestAttributes().Ints("kernel_shape", 2, 2).Ints("strides", 0, 1), "strides [0,1] must be positive");
        OperatorTestHarness.AssertRejected("AveragePool", [x], new TestAttributes().Ints("kernel_shape", 2, 2).Ints("pads", 0, 2, 0, 0),
            "pads [0,2,0,0] must be smaller than kernel_shape [2,2]");
        OperatorTestHarness.AssertRejected("AveragePool", [x], new TestAttributes().Ints("kernel_shape", 2, 2).Ints("pads", 1, 1), "pads has 2 values");
        OperatorTestHarness.AssertRejected("AveragePool", [x], new TestAttributes().Ints("kernel_shape", 2, 2).Int("count_include_pad", 2),
            "count_include_pad 2 must be 0 or 1");
        OperatorTestHarness.AssertRejected("AveragePool", [x], new TestAttributes().Ints("kernel_shape", 2, 2).Int("ceil_mode", 3), "ceil_mode 3 must be 0 or 1");
        OperatorTestHarness.AssertRejected("AveragePool", [x], new TestAttributes().Ints("kernel_shape", 2, 2).String("auto_pad", "SAME"),
            "auto_pad 'SAME' is not one of");
        OperatorTestHarness.AssertRejected("AveragePool", [x], new TestAttributes().Ints("kernel_shape", 5, 2), "the window (size 5, dilation 1) is larger");
        OperatorTestHarness.AssertRejected("AveragePool", [OperatorInputs.F32("x", [1, 1, 2, 2, 2, 2], 1)],
            new TestAttributes().Ints("kernel_shape", 1, 1, 1, 1), "X must be 3-D [N,C,L], 4-D NCHW or 5-D NCDHW, got [1,1,2,2,2,2]");
        OperatorTestHarness.AssertRejected("AveragePool", [OperatorInputs.I64("x", [1, 1, 4, 4], 1)],
            new TestAttributes().Ints("kernel_shape", 2, 2), "X must be float32 or float16, not Int64");
    }

    [TestCase(new[] { 2, 3, 5, 7 })]
    [TestCase(new[] { 1, 4, 9 })]
    [TestCase(new[] { 1, 2, 3, 4, 5 })]
    [TestCase(new[] { 1, 1, 1, 1 })]
    [TestCase(new[] { 3, 1, 2, 1 })]
    [TestCase(new[] { 2, 64, 32, 32 })]
    public void GlobalAveragePool_matches_ORT(int[] x) =>
        OperatorTestHarness.AssertMatchesOrt("GlobalAveragePool", [OperatorInputs.F32("x", x, 2)]);

    [Test]
    public void GlobalAveragePool_of_an_empty_batch_is_empty() =>
        OperatorTestHarness.AssertMatchesOrt("GlobalAveragePool", [OperatorInputs.F32("x", [0, 3, 4, 4], 2)]);

    [Test]
    public void GlobalAveragePool_float16_matches_ORT() => AssertFloat16("GlobalAveragePool", [2, 5, 6, 7], new TestAttributes());

    [Test]
    public void GlobalAveragePool_errors_are_reported()
    {
        OperatorTestHarness.AssertRejected("GlobalAveragePool", [OperatorInputs.F32("x", [2, 3], 1)], null,
            "X must be [N, C, D1, …] with at least one spatial dimension, got [2,3]");
        OperatorTestHarness.AssertRejected("GlobalAveragePool", [OperatorInputs.I32("x", [1, 2, 3], 1)], null, "X must be float32 or float16, not Int32");
    }

    /// <summary>
    /// float16: against ORT's float16 kernel within one float16 ulp, and exactly equal to the float32 run on the
    /// same (float16-representable) values, rounded to float16.
    /// </summary>
    private static void AssertFloat16(string opType, int[] shape, TestAttributes attributes)
    {
        OperatorTestHarness.AssertMatchesOrt(opType, [OperatorInputs.F16("x", shape, 3)], attributes, relative: 1e-3, absolute: 1e-3);
        Float16Runs.AssertMatchesFloat32(opType, [OperatorInputs.F32("x", shape, 3)], attributes);
    }
}
