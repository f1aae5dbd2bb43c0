using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// InstanceNormalization, LayerNormalization and GroupNormalization against ONNX Runtime (GroupNormalization
/// at opset 18 with per-group scale/bias, which ORT runs as its function body, and at opset 21 with
/// per-channel ones). Shapes include rank 3 (the SD GroupNorm decomposition), spatial sizes of 1, constant
/// inputs (variance 0), zero-size dimensions where ORT allows them (the others are checked without ORT),
/// and sizes that take the threaded path.
/// Tolerances: float32 1e-5 relative + 1e-5 absolute (outputs are O(1) after normalization); float16
/// 1e-3 relative + 2e-3 absolute (both sides round a float32 result; two float16 ulps near 2-4).
/// </summary>
internal sealed class NormalizationOperatorTests
{
    private static readonly ElementType[] FloatTypes = [ElementType.Float32, ElementType.Float16];

    private static (double Relative, double Absolute) Tolerance(ElementType type) =>
        type == ElementType.Float32 ? (1e-5, 1e-5) : (1e-3, 2e-3);

    private static TestInput Random(ElementType type, string name, int[] shape, int seed, float min = -1, float max = 1) =>
        type == ElementType.Float32 ? OperatorInputs.F32(name, shape, seed, min, max) : OperatorInputs.F16(name, shape, seed, min, max);

    private static IEnumerable<TestCaseData> InstanceCases()
    {
        int[][] shapes = [[2, 4, 3], [1, 32, 1], [1, 1, 1], [2, 3, 4, 5], [1, 32, 2500], [2, 3, 2, 2, 2], [2, 4, 0], [0, 4, 3], [3, 5, 1, 1]];
        foreach (var type in FloatTypes)
            foreach (var shape in shapes)
                // ORT crashes on an empty float16 input (checked without ORT in Empty_inputs_give_empty_outputs).
                if (type == ElementType.Float32 || !shape.Contains(0))
                    yield return new TestCaseData(type, shape).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(shape));
    }

    [TestCaseSource(nameof(InstanceCases))]
    public void InstanceNormalization_matches_ORT(ElementType type, int[] shape)
    {
        var (relative, absolute) = Tolerance(type);
        // With one spatial position ORT's y = x·a + (B − mean·a) (a ≈ scale/sqrt(epsilon) ≈ 300) loses about
        // 1e-4 to cancellation where the exact result is B; Spatial_size_1_gives_the_bias checks exactness.
        if (shape.Skip(2).All(d => d == 1)) absolute = Math.Max(absolute, 1e-3);
        var channels = shape[1];
        // Inputs off-centre, so that the mean matters.
        TestInput[] inputs = [Random(type, "x", shape, 1, -2, 3), Random(type, "scale", [channels], 2, 0.5f, 1.5f), Random(type, "B", [channels], 3)];
        OperatorTestHarness.AssertMatchesOrt("InstanceNormalization", inputs, relative: relative, absolute: absolute);
        OperatorTestHarness.AssertMatchesOrt("InstanceNormalization", inputs, new TestAttributes().Float("epsilon", 0.1f),
            relative: relative, absolute: absolute);
    }

    [Test]
    public void Constant_planes_give_the_bias()
    {
        // Variance 0: y = B exactly. ORT's x·a + (B − mean·a) loses up to ~1e-4 here, hence its tolerance.
        foreach (var type in FloatTypes)
        {
            TestInput[] inputs = [OperatorInputs.Values("x", type, [1, 2, 3], 0.5, 0.5, 0.5, -7, -7, -7), Random(type, "scale", [2], 2),
                OperatorInputs.Values("B", type, [2], 0.25, -1.5)];
            Assert.That(OperatorTestHarness.RunOnnxStream("InstanceNormalization", inputs, new TestAttributes(), 1, 1)[0].Item3,
                Is.EqualTo(new[] { 0.25, 0.25, 0.25, -1.5, -1.5, -1.5 }));
            OperatorTestHarness.AssertMatchesOrt("InstanceNormalization", inputs, relative: 1e-3, absolute: 1e-3);
        }
    }

    [Test]
    public void Spatial_size_1_gives_the_bias()
    {
        // Each plane is one value, so x − mean = 0 and y = B exactly. Rank 2 too (which ORT rejects).
        foreach (var type in FloatTypes)
            foreach (var shape in new[] { new[] { 2, 3 }, [2, 3, 1], [2, 3, 1, 1] })
            {
                var bias = OperatorInputs.Values("B", type, [3], 1, -2.5, 3);
                var result = OperatorTestHarness.RunOnnxStream("InstanceNormalization",
                    [Random(type, "x", shape, 1, -2, 3), Random(type, "scale", [3], 2), bias], new TestAttributes(), 1, 1)[0];
                Assert.That(result.Item2, Is.EqualTo(shape));
                Assert.That(result.Item3, Is.EqualTo(new double[] { 1, -2.5, 3, 1, -2.5, 3 }));
                // GroupNormalization with groups of one channel is the same.
                result = OperatorTestHarness.RunOnnxStream("GroupNormalization",
                    [Random(type, "x", shape, 1, -2, 3), Random(type, "scale", [3], 2), bias], new TestAttributes().Int("num_groups", 3), 1, 2)[0];
                Assert.That(result.Item3, Is.EqualTo(new double[] { 1, -2.5, 3, 1, -2.5, 3 }));
            }
    }

    [Test]
    public void Empty_inputs_give_empty_outputs()
    {
        // ORT crashes on empty float16 InstanceNormalization and cannot reshape an empty GroupNormalization input.
        foreach (var type in FloatTypes)
            foreach (var shape in new[] { new[] { 2, 4, 0 }, [0, 4, 3] })
            {
                TestInput[] inputs = [Random(type, "x", shape, 1), Random(type, "scale", [4], 2), Random(type, "B", [4], 3)];
                var instance = OperatorTestHarness.RunOnnxStream("InstanceNormalization", inputs, new TestAttributes(), 1, 2)[0];
                Assert.That((instance.Item1, instance.Item2), Is.EqualTo((type, shape)));
                var group = OperatorTestHarness.RunOnnxStream("GroupNormalization", inputs, new TestAttributes().Int("num_groups", 2), 1, 2)[0];
                Assert.That((group.Item1, group.Item2), Is.EqualTo((type, shape)));
            }
    }

    private static IEnumerable<TestCaseData> GroupCases()
    {
        (int[] Shape, int Groups)[] cases = [([2, 6, 5], 1), ([2, 6, 5], 2), ([2, 6, 5], 3), ([2, 6, 5], 6), ([1, 32, 8, 8], 32), ([1, 64, 8, 8], 8),
            ([2, 4], 2), ([3, 6, 2, 2, 2], 3), ([2, 4, 1, 1], 2), ([1, 64, 32, 32], 32)];
        foreach (var type in FloatTypes)
            foreach (var (shape, groups) in cases)
                yield return new TestCaseData(type, shape, groups).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(shape), groups.ToString());
    }

    [TestCaseSource(nameof(GroupCases))]
    public void GroupNormalization_matches_ORT(ElementType type, int[] shape, int groups)
    {
        var (relative, absolute) = Tolerance(type);
        var channels = shape[1];
        var x = Random(type, "x", shape, 1, -2, 3);
        // Opset 18: scale and bias per group.
        OperatorTestHarness.AssertMatchesOrt("GroupNormalization", [x, Random(type, "scale", [groups], 2, 0.5f, 1.5f), Random(type, "bias", [groups], 3)],
            new TestAttributes().Int("num_groups", groups), relative: relative, absolute: absolute, opset: 18);
        // Opset 21: per channel, with epsilon.
        OperatorTestHarness.AssertMatchesOrt("GroupNormalization", [x, Random(type, "scale", [channels], 4, 0.5f, 1.5f), Random(type, "bias", [channels], 5)],
            new TestAttributes().Int("num_groups", groups).Float("epsilon", 1e-3f), relative: relative, absolute: absolute, opset: 21);
    }

    private static IEnumerable<TestCaseData> LayerCases()
    {
        int[][] shapes = [[7], [2, 4, 3], [3, 1, 5], [2, 3, 4, 5], [2, 77, 768], [0, 5], [4, 1]];
        foreach (var type in FloatTypes)
            foreach (var shape in shapes)
                yield return new TestCaseData(type, shape).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(shape));
    }

    [TestCaseSource(nameof(LayerCases))]
    public void LayerNormalization_matches_ORT(ElementType type, int[] shape)
    {
        var (relative, absolute) = Tolerance(type);
        var rank = shape.Length;
        var x = Random(type, "x", shape, 1, -2, 3);
        var large = shape.Aggregate(1L, (a, b) => a * b) > 10000;
        for (var axis = -rank; axis < rank; axis++)
        {
            var k = axis < 0 ? axis + rank : axis;
            var normalized = shape[k..];
            // An empty normalized shape is an error (in ORT too; see Errors_are_reported).
            if (normalized.Contains(0)) continue;
            // The attribute absent means -1.
            var attributes = new TestAttributes();
            if (axis != -1) attributes.Int("axis", axis);
            if (k % 2 == 1) attributes.Float("epsilon", 1e-3f);
            var scale = Random(type, "scale", normalized, 2, 0.5f, 1.5f);
            var bias = Random(type, "B", normalized, 3);
            OperatorTestHarness.AssertMatchesOrt("LayerNormalization", [x, scale, bias], attributes, outputCount: 3,
                relative: relative, absolute: absolute, opset: 17);
            if (large) continue;
            // Without B; only Y, or Y and Mean.
            OperatorTestHarness.AssertMatchesOrt("LayerNormalization", [x, scale], attributes, outputCount: 1 + (k + 1) % 2,
                relative: relative, absolute: absolute, opset: 17);
            // B given as an empty name (ORT crashes on that): the same as B left off, which ORT checks above.
            var omitted = OperatorTestHarness.RunOnnxStream("LayerNormalization", [x, scale, null], attributes, 3, 2);
            var absent = OperatorTestHarness.RunOnnxStream("LayerNormalization", [x, scale], attributes, 3, 1);
            for (var i = 0; i < 3; i++) Assert.That(omitted[i], Is.EqualTo(absent[i]));
        }
    }

    [Test]
    public void LayerNormalization_broadcasts_scale_and_bias()
    {
        // Scale and B of fewer dimensions, or with 1s, broadcast to X.shape[axis:] (ORT checks this too).
        var x = OperatorInputs.F32("x", [2, 3, 4, 5], 1, -2, 3);
        (int Axis, int[] Scale, int[] Bias)[] cases = [(1, [4, 5], [5]), (1, [1, 4, 5], [3, 1, 1]), (2, [1, 5], [4, 1]), (2, [5], [1]), (1, [1], [3, 4, 5])];
        foreach (var (axis, scaleShape, biasShape) in cases)
            OperatorTestHarness.AssertMatchesOrt("LayerNormalization",
                [x, OperatorInputs.F32("scale", scaleShape, 2, 0.5f, 1.5f), OperatorInputs.F32("B", biasShape, 3)],
                new TestAttributes().Int("axis", axis), outputCount: 3, opset: 17);
    }

    [Test]
    public void LayerNormalization_of_mixed_types()
    {
        // float16 X with float32 Scale and B: computed as if all were float32, Y rounded to float16.
        var x = OperatorInputs.F16("x", [3, 8], 1, -2, 3);
        var mixed = OperatorTestHarness.RunOnnxStream("LayerNormalization",
            [x, OperatorInputs.F32("scale", [8], 2), OperatorInputs.F32("B", [8], 3)], new TestAttributes(), 3, 1);
        var same = OperatorTestHarness.RunOnnxStream("LayerNormalization",
            [x, new TestInput("scale", ElementType.Float16, [8], ((float[])OperatorInputs.F32("scale", [8], 2).Data).Select(v => (Half)v).ToArray()),
                new TestInput("B", ElementType.Float16, [8], ((float[])OperatorInputs.F32("B", [8], 3).Data).Select(v => (Half)v).ToArray())],
            new TestAttributes(), 3, 1);
        Assert.That(mixed[0].Item1, Is.EqualTo(ElementType.Float16));
        Assert.That(mixed[1].Item1, Is.EqualTo(ElementType.Float32));
        Assert.That(mixed[1].Item3, Is.EqualTo(same[1].Item3));
        Assert.That(mixed[0].Item3, Is.EqualTo(same[0].Item3).Within(2e-3));
    }

    [Test]
    public void Errors_are_reported()
    {
        var x = OperatorInputs.F32("x", [2, 4, 3], 1);
        var c4 = OperatorInputs.F32("s", [4], 2);
        var b4 = OperatorInputs.F32("b", [4], 3);

        OperatorTestHarness.AssertRejected("InstanceNormalization", [x, OperatorInputs.F32("s", [3], 2), b4], null, "scale must be [C]=[4] for input [2,4,3], not [3]");
        OperatorTestHarness.AssertRejected("InstanceNormalization", [x, c4, OperatorInputs.F32("b", [1, 4], 3)], null, "B must be [C]=[4] for input [2,4,3], not [1,4]");
        OperatorTestHarness.AssertRejected("InstanceNormalization", [OperatorInputs.I64("x", [2, 4, 3], 1), c4, b4], null, "input must be float32 or float16, not Int64");
        OperatorTestHarness.AssertRejected("InstanceNormalization", [x, OperatorInputs.I32("s", [4], 2), b4], null, "scale must be float32 or float16, not Int32");
        OperatorTestHarness.AssertRejected("InstanceNormalization", [OperatorInputs.F32("x", [4], 1), c4, b4], null, "input must be [N,C,...] (rank 2 or more)");

        var groups = new TestAttributes().Int("num_groups", 2);
        OperatorTestHarness.AssertRejected("GroupNormalization", [x, c4, b4], null, "attribute num_groups is required");
        OperatorTestHarness.AssertRejected("GroupNormalization", [x, c4, b4], new TestAttributes().Int("num_groups", 0), "num_groups must be positive, not 0");
        OperatorTestHarness.AssertRejected("GroupNormalization", [x, c4, b4], new TestAttributes().Int("num_groups", 3),
            "the 4 channels of X [2,4,3] do not split into num_groups=3 groups");
        OperatorTestHarness.AssertRejected("GroupNormalization", [x, OperatorInputs.F32("s", [3], 2), b4], groups,
            "scale must be [num_groups]=[2] or [C]=[4] for X [2,4,3], not [3]");
        OperatorTestHarness.AssertRejected("GroupNormalization", [x, c4, OperatorInputs.F32("b", [2, 2], 3)], groups,
            "bias must be [num_groups]=[2] or [C]=[4] for X [2,4,3], not [2,2]");
        OperatorTestHarness.AssertRejected("GroupNormalization", [OperatorInputs.Bool("x", [2, 4, 3], 1), c4, b4], groups, "X must be float32 or float16, not Bool");
        OperatorTestHarness.AssertRejected("GroupNormalization", [OperatorInputs.F32("x", [4], 1), c4, b4], groups, "X must be [N,C,...] (rank 2 or more)");

        var s3 = OperatorInputs.F32("s", [3], 2);
        OperatorTestHarness.AssertRejected("LayerNormalization", [x, s3], new TestAttributes().Int("axis", 3), "axis 3 is out of range for rank 3");
        OperatorTestHarness.AssertRejected("LayerNormalization", [x, s3], new TestAttributes().Int("axis", -4), "axis -4 is out of range for rank 3");
        OperatorTestHarness.AssertRejected("LayerNormalization", [x, c4], null, "Scale [4] does not broadcast to the normalized shape [3] of X [2,4,3]");
        OperatorTestHarness.AssertRejected("LayerNormalization", [x, s3, OperatorInputs.F32("b", [2, 3], 3)], new TestAttributes().Int("axis", 1),
            "B [2,3] does not broadcast to the normalized shape [4,3] of X [2,4,3]");
        OperatorTestHarness.AssertRejected("LayerNormalization", [x, OperatorInputs.F32("s", [1, 4, 3], 2)], new TestAttributes().Int("axis", 1),
            "Scale [1,4,3] does not broadcast to the normalized shape [4,3]");
        OperatorTestHarness.AssertRejected("LayerNormalization", [OperatorInputs.I32("x", [2, 3], 1), s3], null, "X must be float32 or float16, not Int32");
        OperatorTestHarness.AssertRejected("LayerNormalization", [x, OperatorInputs.I64("s", [3], 2)], null, "Scale must be float32 or float16, not Int64");
        OperatorTestHarness.AssertRejected("LayerNormalization", [OperatorInputs.F32("x", [], 1), OperatorInputs.F32("s", [], 2)], null, "X must have rank 1 or more");
        OperatorTestHarness.AssertRejected("LayerNormalization", [x, s3], new TestAttributes().Int("stash_type", 11), "stash_type 11 is not supported");
        OperatorTestHarness.AssertRejected("LayerNormalization", [OperatorInputs.F32("x", [2, 0], 1), OperatorInputs.F32("s", [0], 2)], null,
            "the normalized shape X.shape[1:] = [0] of X [2,0] has no elements");
        OperatorTestHarness.AssertRejected("LayerNormalization", [x, s3], null, "LayerNormalization has at most 3", outputCount: 4);
    }
}
