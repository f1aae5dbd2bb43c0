using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// Gelu (opset 20) against ONNX Runtime, which implements it in the default domain, and against a
/// double-precision reference. Tolerances: float32 1e-5 relative + 1e-6 absolute (for x ≪ 0 the erf
/// form is x·(1 + erf) with 1 + erf cancelling, so results below 1e-6 are compared absolutely);
/// float16 1e-3 relative + 1e-3 absolute (one float16 ulp, both sides round a float32 result).
/// </summary>
internal sealed class GeluOperatorTests
{
    private static readonly int[][] Shapes = [[3, 4, 5], [], [7], [2, 0, 3], [3, 70001]];

    private static IEnumerable<TestCaseData> Cases() =>
        from approximate in new[] { null, "none", "tanh" }
        from shape in Shapes
        select new TestCaseData(approximate, shape).SetArgDisplayNames(approximate ?? "default", OperatorInputs.Show(shape));

    private static TestAttributes Attributes(string? approximate) =>
        approximate is null ? new TestAttributes() : new TestAttributes().String("approximate", approximate);

    [TestCaseSource(nameof(Cases))]
    public void Float32_matches_ORT(string? approximate, int[] shape) =>
        OperatorTestHarness.AssertMatchesOrt("Gelu", [OperatorInputs.F32("x", shape, 1, -8, 8)], Attributes(approximate), opset: 20);

    [TestCase(null)]
    [TestCase("tanh")]
    public void Float16_matches_ORT(string? approximate) =>
        OperatorTestHarness.AssertMatchesOrt("Gelu", [OperatorInputs.F16("x", [4, 1025], 2, -8, 8)], Attributes(approximate),
            relative: 1e-3, absolute: 1e-3, opset: 20);

    [TestCase(null)]
    [TestCase("tanh")]
    public void Special_values_match_ORT(string? approximate)
    {
        double[] values = [0, -0.0, 1, -1, 3, -3, 10, -10, 100, -100, double.PositiveInfinity, double.NegativeInfinity, double.NaN, 1e-30, -1e-30];
        OperatorTestHarness.AssertMatchesOrt("Gelu", [OperatorInputs.Values("x", ElementType.Float32, [values.Length], values)], Attributes(approximate), opset: 20);
    }

    [TestCase("none")]
    [TestCase("tanh")]
    public void Matches_a_double_reference(string approximate)
    {
        var values = Enumerable.Range(0, 20001).Select(i => -10 + i * 1e-3f).ToArray();
        var actual = new float[values.Length];
        if (approximate == "tanh") OnnxStream.Operators.GeluOperator.ComputeTanh(values, actual);
        else OnnxStream.Operators.GeluOperator.Compute(values, actual);
        var worst = 0.0;
        for (var i = 0; i < values.Length; i++)
        {
            double x = values[i];
            var expected = approximate == "tanh"
                ? 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)))
                : 0.5 * x * Erfc(-x / Math.Sqrt(2));
            // In units of the allowed error: 2e-6 relative + 1e-6 absolute (1 + erf cancels for x ≪ 0).
            var error = Math.Abs(actual[i] - expected) / (2e-6 * Math.Abs(expected) + 1e-6);
            worst = Math.Max(worst, error);
        }
        TestContext.Out.WriteLine($"Gelu {approximate}: worst error {worst:G3} of the allowed 2e-6 relative + 1e-6 absolute");
        Assert.That(worst, Is.LessThanOrEqualTo(1));
    }

    [Test]
    public void Computes_in_place()
    {
        var values = Enumerable.Range(0, 1500).Select(i => -6 + i * 0.008f).ToArray();
        var separate = new float[values.Length];
        OnnxStream.Operators.GeluOperator.Compute(values, separate);
        OnnxStream.Operators.GeluOperator.Compute(values, values);
        Assert.That(values, Is.EqualTo(separate));
    }

    [Test]
    public void Errors_are_reported()
    {
        OperatorTestHarness.AssertRejected("Gelu", [OperatorInputs.F32("x", [3], 1)], new TestAttributes().String("approximate", "fast"),
            "approximate must be \"none\" or \"tanh\", not \"fast\"");
        OperatorTestHarness.AssertRejected("Gelu", [OperatorInputs.I64("x", [3], 1)], null, "X must be float32 or float16, not Int64");
    }

    /// <summary>erfc in double: 1 − (Maclaurin series of erf) below 2.5, the continued fraction above.</summary>
    private static double Erfc(double x)
    {
        if (x < 0) return 2 - Erfc(-x);
        if (x < 2.5)
        {
            double sum = 0, term = x;
            for (var n = 0; n < 200 && Math.Abs(term) > 1e-30 * Math.Abs(sum) + 1e-300; n++)
            {
                sum += term / (2 * n + 1);
                term *= -x * x / (n + 1);
            }
            return 1 - 2 / Math.Sqrt(Math.PI) * sum;
        }
        double fraction = x;
        for (var k = 200; k >= 1; k--) fraction = x + k / 2.0 / fraction;
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / fraction;
    }
}
