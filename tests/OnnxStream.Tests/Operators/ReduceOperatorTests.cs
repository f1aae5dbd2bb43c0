using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// ReduceSum, ReduceMean and ReduceMax against ONNX Runtime: every subset of axes (negative ones too),
/// keepdims absent/0/1, axes as input (opset 18; ReduceSum opset 13) and as attribute (ReduceMean and
/// ReduceMax opset 13, ReduceSum opset 11), absent and empty axes with noop_with_empty_axes, size-1 and
/// zero-size dimensions (positive axes only: ORT ignores negative axes on an empty input), scalars, and
/// shapes large enough for the threaded and chunked paths. NaN in ReduceMax is checked without ORT (its
/// result depends on where the NaN is).
/// Tolerances: float32 1e-5 relative + 1e-5 absolute (sums of values in [-1, 1] can cancel to near 0;
/// 1e-4 absolute for sums of 10⁴–10⁵ values); float16 1e-3 relative + 1e-3 absolute (both sides round a
/// float32 result); integers exact.
/// </summary>
internal sealed class ReduceOperatorTests
{
    private static readonly string[] Ops = ["ReduceSum", "ReduceMean", "ReduceMax"];

    private static readonly ElementType[] Types = [ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32];

    private static IEnumerable<TestCaseData> Cases()
    {
        int[][] shapes = [[7], [3, 4, 5], [2, 1, 6], [2, 3, 4, 5], [3, 1, 2], [2, 0, 3], [0, 4]];
        int[][] fewer = [[3, 4, 5], [2, 1, 6], [0, 4]];
        foreach (var op in Ops)
            foreach (var type in Types)
                foreach (var shape in type == ElementType.Float32 ? shapes : fewer)
                    yield return new TestCaseData(op, type, shape).SetArgDisplayNames(op, type.ToString(), OperatorInputs.Show(shape));
    }

    private static (double Relative, double Absolute) Tolerance(ElementType type) => type switch
    {
        ElementType.Float32 => (1e-5, 1e-5),
        ElementType.Float16 => (1e-3, 1e-3),
        _ => (0, 0),
    };

    /// <summary>
    /// Runs the node with the axes as input 1 (opset 18), and when <paramref name="legacy"/> also as the
    /// attribute (opset 13; ReduceSum opset 11) and, for ReduceSum, as input 1 at opset 13.
    /// </summary>
    private static void AssertForms(string op, TestInput x, long[]? axes, long? keepDims, long? noop, double relative, double absolute,
        bool legacy = true)
    {
        var attributes = new TestAttributes();
        if (keepDims is { } k) attributes.Int("keepdims", k);
        if (noop is { } n) attributes.Int("noop_with_empty_axes", n);
        TestInput[] inputs = axes is null ? [x] : [x, TestInput.Int64s("axes", axes)];
        OperatorTestHarness.AssertMatchesOrt(op, inputs, attributes, relative: relative, absolute: absolute, opset: 18);
        if (!legacy) return;
        if (op == "ReduceSum") OperatorTestHarness.AssertMatchesOrt(op, inputs, attributes, relative: relative, absolute: absolute, opset: 13);
        // The attribute form has no noop_with_empty_axes.
        if (noop is not null) return;
        var old = new TestAttributes();
        if (keepDims is { } k2) old.Int("keepdims", k2);
        if (axes is not null) old.Ints("axes", axes);
        OperatorTestHarness.AssertMatchesOrt(op, [x], old, relative: relative, absolute: absolute, opset: op == "ReduceSum" ? 11 : 13);
    }

    [TestCaseSource(nameof(Cases))]
    public void Reduce_matches_ORT(string op, ElementType type, int[] shape)
    {
        var (relative, absolute) = Tolerance(type);
        var x = OperatorInputs.Of(type, "x", shape, 1);
        var rank = shape.Length;
        // ORT ignores negative axes when the input is empty, so those shapes get positive ones only.
        var empty = shape.Contains(0);
        // Every subset of axes, half of them written with negative axes; keepdims absent, 0, 1 in turn.
        for (var mask = 1; mask < 1 << rank; mask++)
        {
            var negative = !empty && mask % 2 == 1;
            var axes = Enumerable.Range(0, rank).Where(k => (mask >> k & 1) == 1).Select(k => (long)(negative ? k - rank : k)).ToArray();
            AssertForms(op, x, axes, (mask % 3) switch { 0 => null, 1 => 0, _ => 1 }, null, relative, absolute, legacy: mask % 2 == 0 || rank == 1);
        }
    }

    [TestCaseSource(nameof(Ops))]
    public void Absent_and_empty_axes_match_ORT(string op)
    {
        // Absent or empty axes: everything is reduced, or nothing when noop_with_empty_axes is 1.
        foreach (var type in Types)
            foreach (var shape in new[] { new[] { 3, 4, 5 }, [0, 4] })
            {
                var (relative, absolute) = Tolerance(type);
                var x = OperatorInputs.Of(type, "x", shape, 2);
                AssertForms(op, x, null, null, null, relative, absolute);
                AssertForms(op, x, null, 0, null, relative, absolute);
                AssertForms(op, x, [], null, 0, relative, absolute, legacy: false);
                AssertForms(op, x, [], 0, 1, relative, absolute);
                AssertForms(op, x, null, null, 1, relative, absolute, legacy: false);
            }
    }

    private static IEnumerable<TestCaseData> LargeCases()
    {
        // [64,1025] reduced whole spreads one output over threads; [3,5000] has rows longer than one SIMD
        // chunk; [200,300] over axis 0 flushes partial sums; [3,1100] over axis 0 has several column chunks.
        (int[] Shape, long[]? Axes)[] cases = [([64, 1025], null), ([64, 1025], [1]), ([64, 1025], [0]), ([3, 5000], [-1]),
            ([200, 300], [0]), ([3, 1100], [0]), ([2, 77, 768], [-1]), ([4, 64, 3, 40], [1, 3]), ([1, 100000], null)];
        foreach (var op in Ops)
            foreach (var type in Types)
                foreach (var (shape, axes) in cases)
                    yield return new TestCaseData(op, type, shape, axes)
                        .SetArgDisplayNames(op, type.ToString(), OperatorInputs.Show(shape), axes is null ? "all" : string.Join(',', axes));
    }

    [TestCaseSource(nameof(LargeCases))]
    public void Large_reductions_match_ORT(string op, ElementType type, int[] shape, long[]? axes)
    {
        var (relative, absolute) = Tolerance(type);
        if (type == ElementType.Float32 && op == "ReduceSum") absolute = 1e-4;
        // float16 sums of thousands of values: keep them small enough to stay well inside float16's range.
        var x = type == ElementType.Float16 && op == "ReduceSum"
            ? OperatorInputs.F16("x", shape, 3, -0.01f, 0.01f)
            : OperatorInputs.Of(type, "x", shape, 3);
        AssertForms(op, x, axes, null, null, relative, absolute, legacy: type == ElementType.Float32);
    }

    [TestCaseSource(nameof(Ops))]
    public void Scalars_match_ORT(string op)
    {
        foreach (var type in Types)
        {
            var (relative, absolute) = Tolerance(type);
            var x = OperatorInputs.Of(type, "x", [], 5);
            AssertForms(op, x, null, null, null, relative, absolute);
            AssertForms(op, x, [], 0, 1, relative, absolute);
        }
    }

    [TestCaseSource(nameof(Ops))]
    public void Repeated_axes_count_once_like_ORT(string op) =>
        AssertForms(op, OperatorInputs.F32("x", [2, 3, 4], 6), [1, -2, 2], null, null, 1e-5, 1e-5);

    [Test]
    public void Int32_axes_are_accepted()
    {
        var x = OperatorInputs.F32("x", [3, 4, 5], 7);
        var expected = OperatorTestHarness.RunOnnxStream("ReduceSum", [x, TestInput.Int64s("axes", 0, -1)], new TestAttributes(), 1, 1);
        var actual = OperatorTestHarness.RunOnnxStream("ReduceSum", [x, new TestInput("axes", ElementType.Int32, [2], new[] { 0, -1 })], new TestAttributes(), 1, 1);
        Assert.That(actual[0].Item2, Is.EqualTo(new[] { 1, 4, 1 }));
        Assert.That(actual[0].Item3, Is.EqualTo(expected[0].Item3));
    }

    [Test]
    public void Special_values()
    {
        // ReduceMax propagates NaN wherever it is (ORT's result depends on the position, so no ORT here).
        double[] values = [1, double.NaN, 2, 3, 4, 5, double.NegativeInfinity, 7];
        foreach (var type in new[] { ElementType.Float32, ElementType.Float16 })
            foreach (var axis in new long[] { 0, 1 })
            {
                var x = OperatorInputs.Values("x", type, [2, 4], values);
                var result = OperatorTestHarness.RunOnnxStream("ReduceMax", [x, TestInput.Int64s("axes", axis)], new TestAttributes(), 1, 1)[0].Item3;
                Assert.That(result, axis == 0 ? Is.EqualTo(new[] { 4, double.NaN, 2, 7 }) : Is.EqualTo(new[] { double.NaN, 7 }));
            }
        // Infinities and large values agree with ORT.
        double[] others = [1, double.PositiveInfinity, 2, 3, -1e30, 5, double.NegativeInfinity, 1e30];
        foreach (var op in Ops)
            OperatorTestHarness.AssertMatchesOrt(op, [OperatorInputs.Values("x", ElementType.Float32, [2, 4], others), TestInput.Int64s("axes", 1)],
                opset: 18);
        // Integer sums wrap (ORT's int32 result on overflow depends on its code path; not compared).
        foreach (var axis in new long[] { 0, 1 })
        {
            var ints = OperatorInputs.Values("x", ElementType.Int32, [2, 2], int.MaxValue, 5, 3, int.MaxValue);
            var sums = OperatorTestHarness.RunOnnxStream("ReduceSum", [ints, TestInput.Int64s("axes", axis)], new TestAttributes().Int("keepdims", 0), 1, 1)[0].Item3;
            Assert.That(sums, axis == 0
                ? Is.EqualTo(new double[] { unchecked(int.MaxValue + 3), unchecked(int.MaxValue + 5) })
                : Is.EqualTo(new double[] { unchecked(int.MaxValue + 5), unchecked(int.MaxValue + 3) }));
        }
    }

    [Test]
    public void Errors_are_reported()
    {
        var x = OperatorInputs.F32("x", [3, 4], 1);
        OperatorTestHarness.AssertRejected("ReduceSum", [x, TestInput.Int64s("axes", 2)], null, "axes value 2 is out of range for rank 2");
        OperatorTestHarness.AssertRejected("ReduceMean", [x], new TestAttributes().Ints("axes", -3), "axes value -3 is out of range for rank 2");
        OperatorTestHarness.AssertRejected("ReduceMax", [OperatorInputs.F32("s", [], 1), TestInput.Int64s("axes", 0)], null, "axes value 0 is out of range for rank 0");
        OperatorTestHarness.AssertRejected("ReduceMean", [OperatorInputs.Bool("x", [3, 4], 1)], null, "data must be float32, float16, int64 or int32, not Bool");
        OperatorTestHarness.AssertRejected("ReduceSum", [OperatorInputs.U8("x", [3, 4], 1)], null, "data must be float32, float16, int64 or int32, not UInt8");
        OperatorTestHarness.AssertRejected("ReduceSum", [x, OperatorInputs.F32("axes", [1], 1)], null, "axes (input 1) must be int64 or int32");
        OperatorTestHarness.AssertRejected("ReduceSum", [x, OperatorInputs.I64("axes", [1, 1], 1, 0, 0)], null, "axes (input 1) must be 1-D");
        OperatorTestHarness.AssertRejected("ReduceMean", [x, TestInput.Int64s("axes", 1)], new TestAttributes().Ints("axes", 1),
            "axes is given both as an attribute [1] and as input 1");
        OperatorTestHarness.AssertRejected("ReduceMax", [x], new TestAttributes().Int("keepdims", 2), "keepdims must be 0 or 1, not 2");
        OperatorTestHarness.AssertRejected("ReduceSum", [x], new TestAttributes().Int("noop_with_empty_axes", -1), "noop_with_empty_axes must be 0 or 1, not -1");
    }
}
