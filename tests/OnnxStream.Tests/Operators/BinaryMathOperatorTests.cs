using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// Pow, Mod, Min, Max and Sum against ONNX Runtime: types, broadcasting, attributes, errors. Pow's
/// float32 tolerance is 1e-5 relative + 1e-6 absolute, float16's 1e-3 + 1e-3.
/// </summary>
internal sealed class BinaryMathOperatorTests
{
    private static readonly (int[] A, int[] B)[] Patterns =
    [
        ([2, 3, 4], [2, 3, 4]),
        ([2, 3, 4], [4]),
        ([2, 3, 4], [3, 1]),
        ([1, 3, 1], [2, 1, 5]),
        ([], [5]),
        ([5], []),
        ([2, 0, 3], [1, 3]),
        ([4, 40000], [4, 1]),
    ];

    private static IEnumerable<TestCaseData> PowCases() =>
        from types in new (ElementType X, ElementType Y)[]
        {
            (ElementType.Float32, ElementType.Float32), (ElementType.Float32, ElementType.Int64), (ElementType.Float32, ElementType.Int32),
            (ElementType.Float16, ElementType.Float16), (ElementType.Float16, ElementType.Float32), (ElementType.Int64, ElementType.Int64),
            (ElementType.Int32, ElementType.Int32), (ElementType.Int64, ElementType.Float32), (ElementType.Int32, ElementType.Int64),
        }
        from p in Patterns
        select new TestCaseData(types.X, types.Y, p.A, p.B).SetArgDisplayNames(types.X.ToString(), types.Y.ToString(), OperatorInputs.Show(p.A), OperatorInputs.Show(p.B));

    /// <summary>
    /// Integer bases are non-negative under a float exponent: (-2)^0.5 is NaN, which C++ converts to an
    /// integer arbitrarily (ORT gives long.MinValue, OnnxStream saturates).
    /// </summary>
    private static TestInput Base(ElementType type, int[] shape, bool floatExponent) => type switch
    {
        ElementType.Float32 => OperatorInputs.F32("x", shape, 1, 0.1f, 3),
        ElementType.Float16 => OperatorInputs.F16("x", shape, 1, 0.1f, 3),
        ElementType.Int64 => OperatorInputs.I64("x", shape, 1, floatExponent ? 0 : -5, 5),
        _ => OperatorInputs.I32("x", shape, 1, floatExponent ? 0 : -5, 5),
    };

    /// <summary>Float exponents of integer bases are non-negative too: 0^-1 is infinite.</summary>
    private static TestInput Exponent(ElementType type, int[] shape, bool integerBase) => type switch
    {
        ElementType.Float32 => OperatorInputs.F32("y", shape, 2, integerBase ? 0 : -2, 2),
        ElementType.Float16 => OperatorInputs.F16("y", shape, 2, -2, 2),
        ElementType.Int64 => OperatorInputs.I64("y", shape, 2, 0, 4),
        _ => OperatorInputs.I32("y", shape, 2, 0, 4),
    };

    [TestCaseSource(nameof(PowCases))]
    public void Pow_matches_ORT(ElementType x, ElementType y, int[] a, int[] b)
    {
        var half = x == ElementType.Float16;
        OperatorTestHarness.AssertMatchesOrt("Pow", [Base(x, a, y is ElementType.Float32 or ElementType.Float16), Exponent(y, b, x is ElementType.Int64 or ElementType.Int32)], relative: half ? 1e-3 : 1e-5, absolute: half ? 1e-3 : 1e-6);
    }

    [Test]
    public void Pow_with_scalar_exponents_matches_ORT()
    {
        foreach (var e in new[] { 2.0, 3, 0.5, -1, 0 })
            OperatorTestHarness.AssertMatchesOrt("Pow", [OperatorInputs.F32("x", [3, 7], 3, -3, 3), OperatorInputs.Values("y", ElementType.Float32, [], e)]);
        OperatorTestHarness.AssertMatchesOrt("Pow", [OperatorInputs.I64("x", [3, 7], 3, -9, 9), OperatorInputs.Values("y", ElementType.Int64, [], 3)]);
        // A one-element exponent of higher rank, large inputs (threads), float16 and integer exponents.
        OperatorTestHarness.AssertMatchesOrt("Pow", [OperatorInputs.F32("x", [3, 40000], 3, -3, 3), OperatorInputs.Values("y", ElementType.Float32, [1, 1, 1], 2)]);
        OperatorTestHarness.AssertMatchesOrt("Pow", [OperatorInputs.F32("x", [3, 40000], 3, -3, 3), OperatorInputs.Values("y", ElementType.Int64, [1], 3)]);
        OperatorTestHarness.AssertMatchesOrt("Pow", [OperatorInputs.F16("x", [3, 70], 3, -3, 3), OperatorInputs.Values("y", ElementType.Float16, [], 2)], relative: 1e-3, absolute: 1e-3);
        OperatorTestHarness.AssertMatchesOrt("Pow", [OperatorInputs.F16("x", [3, 70], 3, -3, 3), OperatorInputs.Values("y", ElementType.Int32, [], 3)], relative: 1e-3, absolute: 1e-3);
    }

    private static IEnumerable<TestCaseData> ModCases() =>
        from type in new[] { ElementType.Int64, ElementType.Int32, ElementType.Float32, ElementType.Float16 }
        from fmod in type is ElementType.Int64 or ElementType.Int32 ? new[] { 0, 1 } : new[] { 1 }
        from p in Patterns
        select new TestCaseData(type, fmod, p.A, p.B).SetArgDisplayNames(type.ToString(), $"fmod={fmod}", OperatorInputs.Show(p.A), OperatorInputs.Show(p.B));

    [TestCaseSource(nameof(ModCases))]
    public void Mod_matches_ORT(ElementType type, int fmod, int[] a, int[] b)
    {
        var random = new Random(7);
        // Divisors: nonzero, both signs.
        var divisors = Enumerable.Range(0, OperatorInputs.Count(b)).Select(_ => (random.Next(2) * 2 - 1) * (random.Next(1, 8) + (type is ElementType.Float32 or ElementType.Float16 ? 0.25 : 0))).ToArray();
        var dividend = type switch
        {
            ElementType.Int64 => OperatorInputs.I64("a", a, 8, -50, 50),
            ElementType.Int32 => OperatorInputs.I32("a", a, 8, -50, 50),
            ElementType.Float16 => OperatorInputs.F16("a", a, 8, -50, 50),
            _ => OperatorInputs.F32("a", a, 8, -50, 50),
        };
        OperatorTestHarness.AssertMatchesOrt("Mod", [dividend, OperatorInputs.Values("b", type, b, divisors)], new TestAttributes().Int("fmod", fmod));
    }

    [Test]
    public void Mod_rejects_fmod_0_for_floats() =>
        OperatorTestHarness.AssertRejected("Mod", [OperatorInputs.F32("a", [3], 1), OperatorInputs.F32("b", [3], 2)], null, "fmod must be 1 for Float32 operands");

    [Test]
    public void Integer_Mod_by_zero_is_rejected() =>
        OperatorTestHarness.AssertRejected("Mod", [OperatorInputs.I64("a", [3], 1), OperatorInputs.Values("b", ElementType.Int64, [3], 1, 0, 2)], null,
            "integer modulo by zero");

    private static readonly int[][][] VariadicShapes =
    [
        [[2, 3, 4]],
        [[2, 3, 4], [2, 3, 4]],
        [[3], [2, 3, 1], [4, 1, 1, 1]],
        [[], [3, 2], [2], [1, 1]],
        [[2, 0], [1, 1]],
        [[3, 30000], [3, 1], [30000]],
    ];

    private static IEnumerable<TestCaseData> VariadicCases() =>
        from op in new[] { "Min", "Max", "Sum" }
        from type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32 }
        where !(op == "Sum" && type is ElementType.Int64 or ElementType.Int32) // ONNX Sum is float-only
        from shapes in VariadicShapes
        select new TestCaseData(op, type, shapes).SetArgDisplayNames(op, type.ToString(), string.Join(" ", shapes.Select(OperatorInputs.Show)));

    [TestCaseSource(nameof(VariadicCases))]
    public void Min_Max_Sum_match_ORT(string op, ElementType type, int[][] shapes) =>
        OperatorTestHarness.AssertMatchesOrt(op, shapes.Select((shape, i) => (TestInput?)OperatorInputs.Of(type, $"x{i}", shape, 10 + i)).ToList(),
            relative: type == ElementType.Float16 ? 1e-3 : 1e-5);

    // ORT rejects integer Sum (ONNX allows float types only); OnnxStream adds integers anyway.
    [Test]
    public void Sum_of_int64_adds()
    {
        var result = OperatorTestHarness.RunOnnxStream("Sum",
            [OperatorInputs.Values("a", ElementType.Int64, [2], 1, 2), OperatorInputs.Values("b", ElementType.Int64, [], 10), OperatorInputs.Values("c", ElementType.Int64, [2, 1], 100, 200)],
            new TestAttributes(), 1, 1);
        Assert.That(result[0].Item3, Is.EqualTo(new double[] { 111, 112, 211, 212 }));
    }

    [Test]
    public void Variadic_inputs_of_different_types_are_rejected() =>
        OperatorTestHarness.AssertRejected("Max", [OperatorInputs.F32("a", [3], 1), OperatorInputs.F16("b", [3], 2)], null, "inputs must have one type");

    [Test]
    public void Pow_of_bools_is_rejected() =>
        OperatorTestHarness.AssertRejected("Pow", [OperatorInputs.Bool("a", [3], 1), OperatorInputs.F32("b", [3], 2)], null, "X must be float32, float16, int64 or int32, not Bool");
}
