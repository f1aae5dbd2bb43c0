using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>ScatterND against ONNX Runtime: index depths, negative indices, data types, errors.</summary>
internal sealed class ScatterNDOperatorTests
{
    private static TestInput Indices(int[] shape, params long[] values) => new("indices", ElementType.Int64, shape, values);

    private static IEnumerable<TestCaseData> Cases()
    {
        (int[] Data, int[] IndexShape, long[] Indices)[] cases =
        [
            ([8], [4, 1], [4, 3, 1, 7]),                       // elements of a vector
            ([4, 4, 4], [2, 1], [0, 2]),                       // whole matrices
            ([4, 4, 4], [2, 2], [0, 1, -1, -2]),               // rows, negative indices
            ([4, 4, 4], [3, 3], [0, 0, 0, 1, 2, 3, 3, 3, 3]),  // single elements
            ([2, 3], [2, 2, 2], [0, 0, 1, 2, 1, 0, 0, 2]),     // indices of rank 3
            ([3, 2], [0, 1], []),                              // nothing to scatter
        ];
        foreach (var type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Bool })
            foreach (var c in cases)
                yield return new TestCaseData(type, c.Data, c.IndexShape, c.Indices)
                    .SetArgDisplayNames(type.ToString(), OperatorInputs.Show(c.Data), OperatorInputs.Show(c.IndexShape));
    }

    [TestCaseSource(nameof(Cases))]
    public void ScatterND_matches_ORT(ElementType type, int[] data, int[] indexShape, long[] indices)
    {
        var k = indexShape[^1];
        int[] updates = [.. indexShape[..^1], .. data[k..]];
        OperatorTestHarness.AssertMatchesOrt("ScatterND", [OperatorInputs.Of(type, "data", data, 1), Indices(indexShape, indices), OperatorInputs.Of(type, "updates", updates, 2)]);
    }

    [Test]
    public void Reduction_none_attribute_matches_ORT() =>
        OperatorTestHarness.AssertMatchesOrt("ScatterND", [OperatorInputs.F32("data", [4, 3], 1), Indices([1, 1], 2), OperatorInputs.F32("updates", [1, 3], 2)],
            new TestAttributes().String("reduction", "none"), opset: 16);

    [Test]
    public void Errors_are_reported()
    {
        OperatorTestHarness.AssertRejected("ScatterND", [OperatorInputs.F32("data", [4, 3], 1), Indices([1, 1], 4), OperatorInputs.F32("updates", [1, 3], 2)], null,
            "indices entry 4 is out of range for axis 0 of size 4");
        OperatorTestHarness.AssertRejected("ScatterND", [OperatorInputs.F32("data", [4, 3], 1), Indices([1, 1], 2), OperatorInputs.F32("updates", [1, 2], 2)], null,
            "updates [1,2] must have shape [1,3]");
        OperatorTestHarness.AssertRejected("ScatterND", [OperatorInputs.F32("data", [4, 3], 1), Indices([1, 1], 2), OperatorInputs.F32("updates", [1, 3], 2)],
            new TestAttributes().String("reduction", "add"), "reduction 'add' is not supported (only 'none')");
        OperatorTestHarness.AssertRejected("ScatterND", [OperatorInputs.F32("data", [4, 3], 1), Indices([1, 3], 0, 0, 0), OperatorInputs.F32("updates", [1], 2)], null,
            "the indices' last dimension 3 exceeds the data's rank 2");
    }
}
