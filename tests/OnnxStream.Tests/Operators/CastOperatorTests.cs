using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Cast between every pair of supported types against ONNX Runtime, and its errors.</summary>
internal sealed class CastOperatorTests
{
    private static readonly ElementType[] Types =
        [ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32, ElementType.UInt8, ElementType.Bool];

    private static int OnnxType(ElementType type) => type switch
    {
        ElementType.Float32 => 1,
        ElementType.Float16 => 10,
        ElementType.Int64 => 7,
        ElementType.Int32 => 6,
        ElementType.UInt8 => 2,
        _ => 9,
    };

    private static IEnumerable<TestCaseData> Pairs() =>
        from source in Types
        from target in Types
        select new TestCaseData(source, target).SetArgDisplayNames(source.ToString(), target.ToString());

    /// <summary>
    /// Values every target represents without overflow (what C++ leaves undefined is left out: negative
    /// or large floats to uint8): zeros, fractions of both signs (truncation), integers.
    /// </summary>
    private static TestInput Source(ElementType from, ElementType to, int[] shape)
    {
        var random = new Random(3);
        var unsigned = to == ElementType.UInt8;
        var values = Enumerable.Range(0, OperatorInputs.Count(shape)).Select(i => i % 5 == 0 ? 0.0
            : from is ElementType.Float32 or ElementType.Float16
                ? Math.Round((unsigned ? 0 : -100) + random.NextDouble() * (unsigned ? 250 : 200), 2)
                : random.Next(unsigned ? 0 : -100, 101)).ToArray();
        if (from is ElementType.Int64 or ElementType.Int32 && to == ElementType.UInt8)
            values = values.Select((v, i) => i % 3 == 0 ? v - 300 : v).ToArray(); // integer wrap-around is defined
        if (from == ElementType.Int64 && to == ElementType.Int32)
            values = values.Select((v, i) => i % 3 == 0 ? v * 1e9 : v).ToArray();
        if (from is ElementType.UInt8) values = values.Select(Math.Abs).ToArray();
        return OperatorInputs.Values("x", from, shape, values);
    }

    [TestCaseSource(nameof(Pairs))]
    public void Cast_matches_ORT(ElementType from, ElementType to)
    {
        foreach (var shape in new[] { new[] { 3, 7 }, [], [0, 2], [3, 30000] })
            OperatorTestHarness.AssertMatchesOrt("Cast", [Source(from, to, shape)], new TestAttributes().Int("to", OnnxType(to)));
    }

    [Test]
    public void Special_floats_cast_to_float16_and_bool_match_ORT()
    {
        double[] values = [double.NaN, double.PositiveInfinity, double.NegativeInfinity, -0.0, 1e-8, 70000, 65519, 1.00048828125];
        foreach (var to in new[] { ElementType.Float16, ElementType.Bool, ElementType.Float32 })
            OperatorTestHarness.AssertMatchesOrt("Cast", [OperatorInputs.Values("x", ElementType.Float32, [values.Length], values)],
                new TestAttributes().Int("to", OnnxType(to)));
    }

    [Test]
    public void Unsupported_targets_are_rejected()
    {
        OperatorTestHarness.AssertRejected("Cast", [OperatorInputs.F32("x", [3], 1)], new TestAttributes().Int("to", 11), "cannot cast to ONNX data type 11 (double)");
        OperatorTestHarness.AssertRejected("Cast", [OperatorInputs.F32("x", [3], 1)], null, "attribute 'to' is required");
    }
}
