using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Slice against ONNX Runtime.</summary>
internal sealed class SliceOperatorTests
{
    private static TestInput Data(int[] shape) => TestInput.Floats("data", shape, 1);

    private static void Check(int[] shape, long[] starts, long[] ends, long[]? axes = null, long[]? steps = null) =>
        OperatorTestHarness.AssertMatchesOrt("Slice",
        [
            Data(shape),
            TestInput.Int64s("starts", starts),
            TestInput.Int64s("ends", ends),
            axes is null ? (steps is null ? null : TestInput.Int64s("axes", Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray())) : TestInput.Int64s("axes", axes),
            steps is null ? null : TestInput.Int64s("steps", steps),
        ]);

    [Test]
    public void Yolo_style_slice_matches_ORT()
    {
        Check([1, 4, 8400], [0], [2], [1]);
        Check([1, 4, 8400], [2], [4], [1]);
    }

    [Test]
    public void Axes_omitted_match_ORT() => Check([4, 5, 6], [1, 2], [3, 5]);

    [Test]
    public void Negative_starts_and_ends_match_ORT() => Check([4, 5, 6], [-3, -4], [-1, 100], [2, 0]);

    [Test]
    public void Out_of_range_starts_and_ends_are_clamped() =>
        Check([4, 5, 6], [-100, 2, 1], [long.MaxValue, 1000, long.MaxValue], [0, 1, -1]);

    [Test]
    public void Steps_match_ORT() => Check([6, 7, 8], [0, 1, 7], [6, 7, 0], [0, 1, 2], [2, 3, 1]);

    [Test]
    public void Negative_steps_match_ORT()
    {
        Check([6, 7, 8], [-1, 5], [long.MinValue, 0], [0, 2], [-1, -2]);
        Check([6, 7, 8], [100, 6], [-100, 1], [1, 2], [-3, -1]);
    }

    [Test]
    public void Huge_steps_match_ORT() => Check([6, 7], [1, 5], [6, -8], [0, 1], [long.MaxValue, long.MinValue]);

    [Test]
    public void An_empty_slice_matches_ORT() => Check([4, 5], [3], [1], [1]);

    [Test]
    public void Int32_indices_and_int64_data_match_ORT() =>
        OperatorTestHarness.AssertMatchesOrt("Slice",
        [
            new TestInput("data", ElementType.Int64, [3, 4], Enumerable.Range(0, 12).Select(v => (long)v * 1000).ToArray()),
            new TestInput("starts", ElementType.Int32, [2], new[] { 2, -1 }),
            new TestInput("ends", ElementType.Int32, [2], new[] { -100, -5 }),
            new TestInput("axes", ElementType.Int32, [2], new[] { 0, 1 }),
            new TestInput("steps", ElementType.Int32, [2], new[] { -1, -2 }),
        ]);

    [Test]
    public void Large_slices_match_ORT_with_threads()
    {
        Check([1, 64, 40, 40], [10, 3], [50, 39], [1, 3]);
        Check([2, 64, 40, 40], [0, 40], [64, 0], [1, 2], [2, -1]);
    }

    [Test]
    public void Opset_1_attributes_match_ORT() =>
        OperatorTestHarness.AssertMatchesOrt("Slice", [Data([4, 5, 6])],
            new TestAttributes().Ints("starts", 1, -4).Ints("ends", 1000, -1).Ints("axes", 0, 2), opset: 9);

    [Test]
    public void Starts_and_ends_of_different_lengths_are_rejected() =>
        OperatorTestHarness.AssertRejected("Slice",
            [Data([4, 5]), TestInput.Int64s("starts", 0, 0), TestInput.Int64s("ends", 1, 1, 1)], null,
            "starts and ends have 2 and 3 elements");

    [Test]
    public void A_zero_step_is_rejected() =>
        OperatorTestHarness.AssertRejected("Slice",
            [Data([4, 5]), TestInput.Int64s("starts", 0), TestInput.Int64s("ends", 1), TestInput.Int64s("axes", 0), TestInput.Int64s("steps", 0)],
            null, "steps[0] is 0");

    [Test]
    public void A_repeated_axis_is_rejected() =>
        OperatorTestHarness.AssertRejected("Slice",
            [Data([4, 5]), TestInput.Int64s("starts", 0, 0), TestInput.Int64s("ends", 1, 1), TestInput.Int64s("axes", 1, -1)],
            null, "axis 1 is sliced twice");
}
