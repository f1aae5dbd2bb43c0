using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// CumSum against ONNX Runtime: every axis, exclusive and reverse, types. float32 tolerance 1e-5
/// relative + 1e-5 absolute (sums of values in [-1, 1] can cancel to near 0); float16 1e-3 + 1e-3.
/// </summary>
internal sealed class CumSumOperatorTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        int[][] shapes = [[7], [3, 4, 5], [2, 1, 6], [200, 300], [2, 0, 3]];
        foreach (var type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32 })
            foreach (var shape in shapes)
                yield return new TestCaseData(type, shape).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(shape));
    }

    [TestCaseSource(nameof(Cases))]
    public void CumSum_matches_ORT(ElementType type, int[] shape)
    {
        var half = type == ElementType.Float16;
        for (var axis = -shape.Length; axis < shape.Length; axis++)
            foreach (var exclusive in new long?[] { null, 0, 1 })
                foreach (var reverse in new long?[] { null, 0, 1 })
                {
                    var attributes = new TestAttributes();
                    if (exclusive is { } e) attributes.Int("exclusive", e);
                    if (reverse is { } r) attributes.Int("reverse", r);
                    var axisInput = axis % 2 == 0 ? OperatorInputs.ScalarI64("axis", axis) : new TestInput("axis", ElementType.Int32, [], new[] { axis });
                    OperatorTestHarness.AssertMatchesOrt("CumSum", [OperatorInputs.Of(type, "x", shape, 1), axisInput], attributes,
                        relative: half ? 1e-3 : 1e-5, absolute: half ? 1e-3 : 1e-5);
                }
    }

    [Test]
    public void Errors_are_reported()
    {
        OperatorTestHarness.AssertRejected("CumSum", [OperatorInputs.F32("x", [3, 4], 1), OperatorInputs.ScalarI64("axis", 2)], null, "axis 2 is out of range for rank 2");
        OperatorTestHarness.AssertRejected("CumSum", [OperatorInputs.F32("x", [3, 4], 1), TestInput.Int64s("axis", 0, 1)], null, "axis must be a scalar");
        OperatorTestHarness.AssertRejected("CumSum", [OperatorInputs.Bool("x", [3, 4], 1), OperatorInputs.ScalarI64("axis", 0)], null, "x must be float32, float16, int64 or int32");
        OperatorTestHarness.AssertRejected("CumSum", [OperatorInputs.F32("x", [3, 4], 1), OperatorInputs.ScalarI64("axis", 0)], new TestAttributes().Int("reverse", 2),
            "reverse must be 0 or 1");
    }
}
