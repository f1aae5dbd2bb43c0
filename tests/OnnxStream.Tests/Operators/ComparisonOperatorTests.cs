using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Equal, Greater, Less, And, Or and Where against ONNX Runtime: types, broadcasting, errors.</summary>
internal sealed class ComparisonOperatorTests
{
    private static readonly (int[] A, int[] B)[] Patterns =
    [
        ([2, 3, 4], [2, 3, 4]),
        ([2, 3, 4], [4]),
        ([2, 3, 4], [3, 1]),
        ([1, 3, 1], [2, 1, 5]),
        ([], [5]),
        ([], []),
        ([2, 0, 3], [1, 3]),
        ([2, 1, 3, 1, 2, 1, 3], [5, 3, 2, 2, 1, 1]),
        ([4, 40000], [4, 1]),
        ([80000], [80000]),
    ];

    private static IEnumerable<TestCaseData> CompareCases() =>
        from op in new[] { "Equal", "Greater", "Less" }
        from type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32 }
        from p in Patterns
        select new TestCaseData(op, type, p.A, p.B).SetArgDisplayNames(op, type.ToString(), OperatorInputs.Show(p.A), OperatorInputs.Show(p.B));

    private static TestInput Operand(ElementType type, string name, int[] shape, int seed) => type switch
    {
        ElementType.Float32 or ElementType.Float16 => OperatorInputs.Grid(name, type, shape, seed),
        ElementType.Int64 => OperatorInputs.I64(name, shape, seed, -2, 2),
        _ => OperatorInputs.I32(name, shape, seed, -2, 2),
    };

    [TestCaseSource(nameof(CompareCases))]
    public void Comparisons_match_ORT(string op, ElementType type, int[] a, int[] b) =>
        OperatorTestHarness.AssertMatchesOrt(op, [Operand(type, "a", a, 1), Operand(type, "b", b, 2)]);

    [Test]
    public void Equal_of_bools_matches_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("Equal", [OperatorInputs.Bool("a", [3, 4], 1), OperatorInputs.Bool("b", [3, 4], 2)]);
        OperatorTestHarness.AssertMatchesOrt("Equal", [OperatorInputs.Bool("a", [3, 4], 1), OperatorInputs.Bool("b", [4], 2)]);
    }

    [Test]
    public void Comparisons_of_special_floats_match_ORT()
    {
        double[] a = [double.NaN, 1, double.PositiveInfinity, -0.0, 0, double.NegativeInfinity];
        double[] b = [double.NaN, double.NaN, double.PositiveInfinity, 0, -0.0, 1];
        foreach (var op in new[] { "Equal", "Greater", "Less" })
            OperatorTestHarness.AssertMatchesOrt(op, [OperatorInputs.Values("a", ElementType.Float32, [6], a), OperatorInputs.Values("b", ElementType.Float32, [6], b)]);
    }

    private static IEnumerable<TestCaseData> LogicalCases() =>
        from op in new[] { "And", "Or" }
        from p in Patterns
        select new TestCaseData(op, p.A, p.B).SetArgDisplayNames(op, OperatorInputs.Show(p.A), OperatorInputs.Show(p.B));

    [TestCaseSource(nameof(LogicalCases))]
    public void And_and_Or_match_ORT(string op, int[] a, int[] b) =>
        OperatorTestHarness.AssertMatchesOrt(op, [OperatorInputs.Bool("a", a, 3), OperatorInputs.Bool("b", b, 4)]);

    private static readonly (int[] C, int[] X, int[] Y)[] WherePatterns =
    [
        ([2, 3, 4], [2, 3, 4], [2, 3, 4]),
        ([2, 1, 4], [3, 1], []),
        ([], [2, 3], [3]),
        ([4], [3, 1], [2, 1, 1]),
        ([1, 5, 1], [2, 1, 1, 6], [1, 1, 6]),
        ([0, 3], [3], [1, 3]),
        ([2, 40000], [1, 40000], [2, 1]),
    ];

    private static IEnumerable<TestCaseData> WhereCases() =>
        from type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32, ElementType.UInt8 }
        from p in WherePatterns
        select new TestCaseData(type, p.C, p.X, p.Y).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(p.C), OperatorInputs.Show(p.X), OperatorInputs.Show(p.Y));

    [TestCaseSource(nameof(WhereCases))]
    public void Where_matches_ORT(ElementType type, int[] c, int[] x, int[] y) =>
        OperatorTestHarness.AssertMatchesOrt("Where", [OperatorInputs.Bool("c", c, 5), OperatorInputs.Of(type, "x", x, 6), OperatorInputs.Of(type, "y", y, 7)]);

    // ORT has no bool Where kernel; OnnxStream moves bool elements like uint8 ones.
    [Test]
    public void Where_of_bools_selects()
    {
        var result = OperatorTestHarness.RunOnnxStream("Where",
            [OperatorInputs.Values("c", ElementType.Bool, [4], 1, 0, 1, 0), OperatorInputs.Values("x", ElementType.Bool, [4], 1, 1, 0, 0), OperatorInputs.Values("y", ElementType.Bool, [], 1)],
            new TestAttributes(), 1, 1);
        Assert.That(result[0].Item3, Is.EqualTo(new double[] { 1, 1, 0, 1 }));
    }

    [Test]
    public void Operands_of_different_types_are_rejected() =>
        OperatorTestHarness.AssertRejected("Equal", [OperatorInputs.F32("a", [3], 1), OperatorInputs.I64("b", [3], 2)], null,
            "A and B must have the same type, not Float32 and Int64");

    [Test]
    public void Ordering_bools_is_rejected() =>
        OperatorTestHarness.AssertRejected("Greater", [OperatorInputs.Bool("a", [3], 1), OperatorInputs.Bool("b", [3], 2)], null, "does not compare bool tensors");

    [Test]
    public void Shapes_that_do_not_broadcast_are_rejected()
    {
        OperatorTestHarness.AssertRejected("Less", [OperatorInputs.F32("a", [2, 3], 1), OperatorInputs.F32("b", [2], 2)], null, "shapes [2,3], [2] do not broadcast");
        OperatorTestHarness.AssertRejected("Where", [OperatorInputs.Bool("c", [4], 1), OperatorInputs.F32("x", [3], 2), OperatorInputs.F32("y", [1], 3)], null,
            "shapes [4], [3], [1] do not broadcast");
    }

    [Test]
    public void Logical_operators_need_bools() =>
        OperatorTestHarness.AssertRejected("And", [OperatorInputs.Bool("a", [3], 1), OperatorInputs.I32("b", [3], 2)], null, "A and B must be bool, not Bool and Int32");

    [Test]
    public void Where_checks_its_types()
    {
        OperatorTestHarness.AssertRejected("Where", [OperatorInputs.F32("c", [3], 1), OperatorInputs.F32("x", [3], 2), OperatorInputs.F32("y", [3], 3)], null,
            "condition must be bool, not Float32");
        OperatorTestHarness.AssertRejected("Where", [OperatorInputs.Bool("c", [3], 1), OperatorInputs.F32("x", [3], 2), OperatorInputs.F16("y", [3], 3)], null,
            "X and Y must have the same type, not Float32 and Float16");
    }
}
