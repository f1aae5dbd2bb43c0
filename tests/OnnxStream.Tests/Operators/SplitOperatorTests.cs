using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Split against ONNX Runtime.</summary>
internal sealed class SplitOperatorTests
{
    [TestCase(1, new long[] { 16, 16 })]
    [TestCase(1, new long[] { 5, 0, 27 })]
    [TestCase(-1, new long[] { 1, 2, 3 })]
    [TestCase(0, new long[] { 1, 1 })]
    public void Split_input_matches_ORT(int axis, long[] split) =>
        OperatorTestHarness.AssertMatchesOrt("Split",
            [TestInput.Floats("x", [2, 32, 6], 1), TestInput.Int64s("split", split)],
            new TestAttributes().Int("axis", axis), outputCount: split.Length);

    [Test]
    public void Yolo_style_split_matches_ORT_with_threads() =>
        OperatorTestHarness.AssertMatchesOrt("Split",
            [TestInput.Floats("x", [1, 64, 40, 40], 1), TestInput.Int64s("split", 32, 32)],
            new TestAttributes().Int("axis", 1), outputCount: 2);

    [TestCase(0, 2)]
    [TestCase(1, 3)]
    [TestCase(-1, 2)]
    public void Equal_parts_without_sizes_match_ORT(int axis, int outputs) =>
        OperatorTestHarness.AssertMatchesOrt("Split", [TestInput.Floats("x", [4, 6, 2], 2)],
            new TestAttributes().Int("axis", axis), outputCount: outputs);

    [Test]
    public void Axis_defaults_to_0() =>
        OperatorTestHarness.AssertMatchesOrt("Split", [TestInput.Floats("x", [4, 3], 3)], outputCount: 2);

    [TestCase(7, 3)]
    [TestCase(6, 3)]
    [TestCase(5, 2)]
    public void Num_outputs_matches_ORT_at_opset_18(int size, int outputs) =>
        OperatorTestHarness.AssertMatchesOrt("Split", [TestInput.Floats("x", [2, size], 4)],
            new TestAttributes().Int("axis", 1).Int("num_outputs", outputs), outputCount: outputs, opset: 18);

    [Test]
    public void Split_attribute_matches_ORT_at_opset_11() =>
        OperatorTestHarness.AssertMatchesOrt("Split", [TestInput.Floats("x", [2, 5], 5)],
            new TestAttributes().Int("axis", 1).Ints("split", 2, 3), outputCount: 2, opset: 11);

    [Test]
    public void Int64_data_matches_ORT() =>
        OperatorTestHarness.AssertMatchesOrt("Split",
            [TestInput.Int64s("x", 1, 2, 3, 4, 5, 6), TestInput.Int64s("split", 4, 2)], outputCount: 2);

    [Test]
    public void Sizes_that_do_not_sum_to_the_dimension_are_rejected() =>
        OperatorTestHarness.AssertRejected("Split", [TestInput.Floats("x", [2, 5], 1), TestInput.Int64s("split", 4)],
            new TestAttributes().Int("axis", 1), "sums to 4, but axis 1 of [2,5] has 5");

    [Test]
    public void Sizes_for_another_number_of_outputs_are_rejected() =>
        OperatorTestHarness.AssertRejected("Split", [TestInput.Floats("x", [2, 6], 1), TestInput.Int64s("split", 2, 2, 2)],
            new TestAttributes().Int("axis", 1), "split has 3 sizes [2,2,2] but the node has 1 outputs");

    [Test]
    public void Split_sizes_must_be_integers() =>
        OperatorTestHarness.AssertRejected("Split", [TestInput.Floats("x", [2, 6], 1), TestInput.Floats("split", [1], 2)],
            null, "must be int64 or int32");
}
