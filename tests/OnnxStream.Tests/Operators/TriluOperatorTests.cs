using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Trilu against ONNX Runtime: upper and lower, k of both signs and out of range, batches, types.</summary>
internal sealed class TriluOperatorTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        int[][] shapes = [[4, 4], [3, 5], [5, 3], [2, 3, 4, 4], [1, 1], [0, 3], [300, 300]];
        foreach (var type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Bool })
            foreach (var shape in shapes)
                yield return new TestCaseData(type, shape).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(shape));
    }

    [TestCaseSource(nameof(Cases))]
    public void Trilu_matches_ORT(ElementType type, int[] shape)
    {
        foreach (var upper in new long?[] { null, 1, 0 })
        {
            var attributes = upper is { } u ? new TestAttributes().Int("upper", u) : null;
            OperatorTestHarness.AssertMatchesOrt("Trilu", [OperatorInputs.Of(type, "x", shape, 1)], attributes);
            foreach (var k in new long[] { 0, 1, -1, 2, -3, 100, -100 })
                OperatorTestHarness.AssertMatchesOrt("Trilu", [OperatorInputs.Of(type, "x", shape, 1), OperatorInputs.ScalarI64("k", k)], attributes);
        }
    }

    [Test]
    public void Errors_are_reported()
    {
        OperatorTestHarness.AssertRejected("Trilu", [OperatorInputs.F32("x", [4], 1)], null, "input must have rank 2 or more");
        OperatorTestHarness.AssertRejected("Trilu", [OperatorInputs.F32("x", [4, 4], 1), TestInput.Int64s("k", 1, 2)], null, "k must be a scalar");
        OperatorTestHarness.AssertRejected("Trilu", [OperatorInputs.F32("x", [4, 4], 1)], new TestAttributes().Int("upper", 2), "upper must be 0 or 1");
    }
}
