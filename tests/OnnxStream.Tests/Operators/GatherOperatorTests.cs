using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Gather against ONNX Runtime: axes, index ranks and types, negative indices, data types, errors.</summary>
internal sealed class GatherOperatorTests
{
    private static TestInput Indices(ElementType type, int[] shape, int size, int seed)
    {
        var random = new Random(seed);
        var values = Enumerable.Range(0, OperatorInputs.Count(shape)).Select(_ => (double)random.Next(-size, size)).ToArray();
        return OperatorInputs.Values("indices", type, shape, values);
    }

    private static IEnumerable<TestCaseData> Cases()
    {
        (int[] Data, int[] Indices, long Axis)[] cases =
        [
            ([5, 4], [3], 0), ([5, 4], [3], 1), ([5, 4], [], 0), ([5, 4], [], -1), ([3, 4, 5], [2, 3], 1), ([3, 4, 5], [2, 2], -1),
            ([3, 4, 5], [0], 2), ([7], [4, 2], 0), ([100, 1024], [16, 8], 0), ([2, 0, 3], [2], 2), ([5, 4], [2, 0], 0),
        ];
        foreach (var type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Bool })
            foreach (var indexType in new[] { ElementType.Int64, ElementType.Int32 })
                foreach (var c in cases)
                    yield return new TestCaseData(type, indexType, c.Data, c.Indices, c.Axis)
                        .SetArgDisplayNames(type.ToString(), indexType.ToString(), OperatorInputs.Show(c.Data), OperatorInputs.Show(c.Indices), $"axis={c.Axis}");
    }

    [TestCaseSource(nameof(Cases))]
    public void Gather_matches_ORT(ElementType type, ElementType indexType, int[] data, int[] indices, long axis)
    {
        var size = data[axis < 0 ? axis + data.Length : axis];
        OperatorTestHarness.AssertMatchesOrt("Gather", [OperatorInputs.Of(type, "data", data, 1), Indices(indexType, indices, Math.Max(size, 1), 2)],
            new TestAttributes().Int("axis", axis));
    }

    [Test]
    public void Default_axis_is_0() =>
        OperatorTestHarness.AssertMatchesOrt("Gather", [OperatorInputs.F32("data", [4, 3], 1), TestInput.Int64s("indices", 3, -4, 0)]);

    [Test]
    public void Out_of_range_indices_are_rejected()
    {
        OperatorTestHarness.AssertRejected("Gather", [OperatorInputs.F32("data", [4, 3], 1), TestInput.Int64s("indices", 0, 4)], null,
            "index 4 is out of range for an axis of size 4 (valid: -4..3)");
        OperatorTestHarness.AssertRejected("Gather", [OperatorInputs.F32("data", [4, 3], 1), OperatorInputs.Values("indices", ElementType.Int32, [1], -4)],
            new TestAttributes().Int("axis", 1), "index -4 is out of range for an axis of size 3");
    }

    [Test]
    public void Bad_axes_and_index_types_are_rejected()
    {
        OperatorTestHarness.AssertRejected("Gather", [OperatorInputs.F32("data", [4, 3], 1), TestInput.Int64s("indices", 0)], new TestAttributes().Int("axis", 2),
            "axis 2 is out of range for rank 2");
        OperatorTestHarness.AssertRejected("Gather", [OperatorInputs.F32("data", [4, 3], 1), OperatorInputs.F32("indices", [1], 2)], null, "indices must be int64 or int32");
    }
}
