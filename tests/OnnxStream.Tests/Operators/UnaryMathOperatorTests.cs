using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Seeded test inputs of every element type (shared by the operator tests of this folder).</summary>
internal static class OperatorInputs
{
    public static int Count(int[] shape) => (int)Shapes.ElementCount(shape);

    public static string Show(int[] shape) => $"[{string.Join(',', shape)}]";

    public static TestInput F32(string name, int[] shape, int seed, float min = -1, float max = 1) => TestInput.Floats(name, shape, seed, min, max);

    public static TestInput F16(string name, int[] shape, int seed, float min = -1, float max = 1) =>
        new(name, ElementType.Float16, shape, OperatorTestHarness.RandomFloats(Count(shape), seed, min, max).Select(v => (Half)v).ToArray());

    /// <summary>Floats on a grid of <paramref name="step"/>, so that equal values occur.</summary>
    public static TestInput Grid(string name, ElementType type, int[] shape, int seed, float step = 0.5f, int levels = 5)
    {
        var random = new Random(seed);
        var values = Enumerable.Range(0, Count(shape)).Select(_ => (random.Next(levels) - levels / 2) * step).ToArray();
        return type == ElementType.Float16
            ? new TestInput(name, type, shape, values.Select(v => (Half)v).ToArray())
            : new TestInput(name, type, shape, values);
    }

    public static TestInput I64(string name, int[] shape, int seed, long min = -100, long max = 100)
    {
        var random = new Random(seed);
        return new TestInput(name, ElementType.Int64, shape, Enumerable.Range(0, Count(shape)).Select(_ => random.NextInt64(min, max + 1)).ToArray());
    }

    public static TestInput I32(string name, int[] shape, int seed, int min = -100, int max = 100)
    {
        var random = new Random(seed);
        return new TestInput(name, ElementType.Int32, shape, Enumerable.Range(0, Count(shape)).Select(_ => random.Next(min, max + 1)).ToArray());
    }

    public static TestInput U8(string name, int[] shape, int seed)
    {
        var random = new Random(seed);
        return new TestInput(name, ElementType.UInt8, shape, Enumerable.Range(0, Count(shape)).Select(_ => (byte)random.Next(256)).ToArray());
    }

    public static TestInput Bool(string name, int[] shape, int seed)
    {
        var random = new Random(seed);
        return new TestInput(name, ElementType.Bool, shape, Enumerable.Range(0, Count(shape)).Select(_ => random.Next(2) == 1).ToArray());
    }

    /// <summary>A random tensor of <paramref name="type"/> (integers in [-100, 100], floats in [-1, 1]).</summary>
    public static TestInput Of(ElementType type, string name, int[] shape, int seed) => type switch
    {
        ElementType.Float32 => F32(name, shape, seed),
        ElementType.Float16 => F16(name, shape, seed),
        ElementType.Int64 => I64(name, shape, seed),
        ElementType.Int32 => I32(name, shape, seed),
        ElementType.UInt8 => U8(name, shape, seed),
        _ => Bool(name, shape, seed),
    };

    public static TestInput ScalarI64(string name, long value) => new(name, ElementType.Int64, [], new[] { value });

    public static TestInput Values(string name, ElementType type, int[] shape, params double[] values) => type switch
    {
        ElementType.Float32 => new TestInput(name, type, shape, values.Select(v => (float)v).ToArray()),
        ElementType.Float16 => new TestInput(name, type, shape, values.Select(v => (Half)v).ToArray()),
        ElementType.Int64 => new TestInput(name, type, shape, values.Select(v => (long)v).ToArray()),
        ElementType.Int32 => new TestInput(name, type, shape, values.Select(v => (int)v).ToArray()),
        ElementType.UInt8 => new TestInput(name, type, shape, values.Select(v => (byte)v).ToArray()),
        _ => new TestInput(name, type, shape, values.Select(v => v != 0).ToArray()),
    };
}

/// <summary>
/// The elementwise float operators against ONNX Runtime. Tolerances: float32 1e-5 relative + 1e-6
/// absolute (transcendental ones included: Cos, Sin, Erf, Exp, Log, Tanh hold it); float16 1e-3
/// relative + 1e-3 absolute (one float16 ulp, as both sides round a float32 result).
/// </summary>
internal sealed class UnaryMathOperatorTests
{
    /// <summary>Operator, input range.</summary>
    private static readonly (string Op, float Min, float Max)[] FloatOps =
    [
        ("Cos", -10, 10), ("Sin", -10, 10), ("Erf", -4.5f, 4.5f), ("Exp", -10, 10), ("Log", 0.001f, 100), ("Neg", -10, 10),
        ("Sqrt", 0, 100), ("Tanh", -10, 10), ("Relu", -10, 10), ("LeakyRelu", -10, 10), ("Softplus", -30, 30),
        ("HardSigmoid", -5, 5), ("HardSwish", -5, 5), ("Clip", -10, 10),
    ];

    private static readonly int[][] UnaryShapes = [[3, 4, 5], [], [7], [2, 0, 3], [3, 70001]];

    private static IEnumerable<TestCaseData> FloatCases() =>
        from o in FloatOps
        from shape in UnaryShapes
        select new TestCaseData(o.Op, shape, o.Min, o.Max).SetArgDisplayNames(o.Op, OperatorInputs.Show(shape));

    private static IEnumerable<TestCaseData> SmallFloatCases() =>
        from o in FloatOps
        select new TestCaseData(o.Op, new[] { 4, 1025 }, o.Min, o.Max).SetArgDisplayNames(o.Op);

    [TestCaseSource(nameof(FloatCases))]
    public void Float32_matches_ORT(string op, int[] shape, float min, float max) =>
        OperatorTestHarness.AssertMatchesOrt(op, [OperatorInputs.F32("x", shape, 1, min, max)]);

    [TestCaseSource(nameof(SmallFloatCases))]
    public void Float16_matches_ORT(string op, int[] shape, float min, float max) =>
        OperatorTestHarness.AssertMatchesOrt(op, [OperatorInputs.F16("x", shape, 2, min, max)], relative: 1e-3, absolute: 1e-3);

    [Test]
    public void Special_values_match_ORT()
    {
        double[] values = [0, -0.0, 1, -1, double.PositiveInfinity, double.NegativeInfinity, double.NaN, 1e-30, -1e-30, 88, -88, 1e30, -1e30];
        foreach (var op in new[] { "Exp", "Log", "Sqrt", "Tanh", "Erf", "Neg", "Softplus", "HardSigmoid", "HardSwish", "LeakyRelu" })
            OperatorTestHarness.AssertMatchesOrt(op, [OperatorInputs.Values("x", ElementType.Float32, [values.Length], values)]);
    }

    [Test]
    public void Erf_is_within_2e_7_relative_of_a_double_reference()
    {
        // Against a double-precision reference over a dense sweep of [-6, 6] and tiny values.
        var values = Enumerable.Range(0, 120001).Select(i => -6 + i * 1e-4f)
            .Concat(Enumerable.Range(0, 200).Select(i => MathF.Pow(10, -30 + i * 0.15f)))
            .Concat(Enumerable.Range(0, 200).Select(i => -MathF.Pow(10, -30 + i * 0.15f))).ToArray();
        var actual = new float[values.Length];
        OnnxStream.Operators.ErfOperator.Compute(values, actual);
        var worst = 0.0;
        for (var i = 0; i < values.Length; i++)
        {
            var expected = ReferenceErf(values[i]);
            var error = Math.Abs(actual[i] - expected) / Math.Max(Math.Abs(expected), 1e-38);
            worst = Math.Max(worst, error);
        }
        TestContext.Out.WriteLine($"Erf: worst relative error {worst:G3}");
        Assert.That(worst, Is.LessThan(2e-7));
    }

    /// <summary>erf in double: its Maclaurin series below 2.5, the continued fraction of erfc above.</summary>
    private static double ReferenceErf(double x)
    {
        var t = Math.Abs(x);
        double result;
        if (t < 2.5)
        {
            double sum = 0, term = t;
            for (var n = 0; n < 200 && Math.Abs(term) > 1e-30 * Math.Abs(sum) + 1e-300; n++)
            {
                sum += term / (2 * n + 1);
                term *= -t * t / (n + 1);
            }
            result = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // erfc(t) = e^-t² / √π · 1/(t + 1/2/(t + 1/(t + 3/2/(t + ...)))) evaluated bottom-up.
            double fraction = t;
            for (var k = 200; k >= 1; k--) fraction = t + k / 2.0 / fraction;
            result = 1 - Math.Exp(-t * t) / Math.Sqrt(Math.PI) / fraction;
        }
        return Math.CopySign(result, x);
    }

    [Test]
    public void LeakyRelu_alpha_matches_ORT() =>
        OperatorTestHarness.AssertMatchesOrt("LeakyRelu", [OperatorInputs.F32("x", [3, 50], 3, -5, 5)], new TestAttributes().Float("alpha", 0.3f));

    [Test]
    public void HardSigmoid_alpha_and_beta_match_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("HardSigmoid", [OperatorInputs.F32("x", [3, 50], 4, -5, 5)], new TestAttributes().Float("alpha", 0.5f).Float("beta", 0.1f));
        OperatorTestHarness.AssertMatchesOrt("HardSigmoid", [OperatorInputs.F16("x", [3, 50], 4, -5, 5)], new TestAttributes().Float("alpha", 0.5f),
            relative: 1e-3, absolute: 1e-3);
    }

    [TestCase(ElementType.Int64)]
    [TestCase(ElementType.Int32)]
    public void Neg_of_integers_matches_ORT(ElementType type) =>
        OperatorTestHarness.AssertMatchesOrt("Neg", [type == ElementType.Int64 ? OperatorInputs.I64("x", [5, 7], 5) : OperatorInputs.I32("x", [5, 7], 5)]);

    [Test]
    public void Relu_of_int32_matches_ORT() => OperatorTestHarness.AssertMatchesOrt("Relu", [OperatorInputs.I32("x", [5, 7], 6)]);

    // ORT has no int64 Relu kernel; OnnxStream's is checked against the definition.
    [Test]
    public void Relu_of_int64_is_max_with_zero()
    {
        var input = OperatorInputs.Values("x", ElementType.Int64, [4], -5, 0, 7, long.MinValue);
        var result = OperatorTestHarness.RunOnnxStream("Relu", [input], new TestAttributes(), 1, 1);
        Assert.That(result[0].Item3, Is.EqualTo(new double[] { 0, 0, 7, 0 }));
    }

    private static IEnumerable<TestCaseData> ClipCases()
    {
        foreach (var type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32 })
            foreach (var (min, max) in new (double?, double?)[] { (-0.5, 0.25), (-0.5, null), (null, 0.25), (null, null), (0.5, -0.5) })
                yield return new TestCaseData(type, min, max).SetArgDisplayNames(type.ToString(), $"{min}", $"{max}");
    }

    [TestCaseSource(nameof(ClipCases))]
    public void Clip_matches_ORT(ElementType type, double? min, double? max)
    {
        var integer = type is ElementType.Int64 or ElementType.Int32;
        var scale = integer ? 100 : 1;
        TestInput x = integer ? OperatorInputs.Of(type, "x", [4, 9], 7) : type == ElementType.Float16 ? OperatorInputs.F16("x", [4, 9], 7) : OperatorInputs.F32("x", [4, 9], 7);
        OperatorTestHarness.AssertMatchesOrt("Clip",
        [
            x,
            min is null ? null : OperatorInputs.Values("min", type, [], min.Value * scale),
            max is null ? null : OperatorInputs.Values("max", type, [], max.Value * scale),
        ]);
    }

    [Test]
    public void Clip_opset_6_attributes_match_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("Clip", [OperatorInputs.F32("x", [4, 9], 8)], new TestAttributes().Float("min", -0.3f).Float("max", 0.6f), opset: 6);
        OperatorTestHarness.AssertMatchesOrt("Clip", [OperatorInputs.F32("x", [4, 9], 8)], new TestAttributes().Float("max", 0.1f), opset: 6);
        OperatorTestHarness.AssertMatchesOrt("Clip", [OperatorInputs.F32("x", [4, 9], 8)], new TestAttributes().Float("min", 0.1f), opset: 6);
    }

    [Test]
    public void Not_matches_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("Not", [OperatorInputs.Bool("x", [3, 5, 7], 9)]);
        OperatorTestHarness.AssertMatchesOrt("Not", [OperatorInputs.Bool("x", [2, 40000], 9)]);
        OperatorTestHarness.AssertMatchesOrt("Not", [OperatorInputs.Bool("x", [], 9)]);
    }

    [TestCase("Exp")]
    [TestCase("Erf")]
    [TestCase("Softplus")]
    public void Integer_inputs_are_rejected(string op) =>
        OperatorTestHarness.AssertRejected(op, [OperatorInputs.I64("x", [3], 1)], null, "X must be float32 or float16, not Int64");

    [Test]
    public void Bool_Neg_is_rejected() =>
        OperatorTestHarness.AssertRejected("Neg", [OperatorInputs.Bool("x", [3], 1)], null, "X must be float32, float16, int64 or int32, not Bool");

    [Test]
    public void Not_of_float_is_rejected() =>
        OperatorTestHarness.AssertRejected("Not", [OperatorInputs.F32("x", [3], 1)], null, "X must be bool, not Float32");

    [Test]
    public void Clip_bounds_must_be_scalars_of_the_input_type()
    {
        OperatorTestHarness.AssertRejected("Clip", [OperatorInputs.F32("x", [3], 1), OperatorInputs.F32("min", [2], 2)], null, "min must be a scalar");
        OperatorTestHarness.AssertRejected("Clip", [OperatorInputs.F32("x", [3], 1), null, OperatorInputs.Values("max", ElementType.Float16, [], 1)], null,
            "max must have the input's type Float32, not Float16");
        OperatorTestHarness.AssertRejected("Clip", [OperatorInputs.I64("x", [3], 1)], new TestAttributes().Float("min", 0), "apply to float inputs only");
    }
}
