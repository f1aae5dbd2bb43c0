using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Softmax (opset-13 semantics) against ONNX Runtime.</summary>
internal sealed class SoftmaxOperatorTests
{
    private static void AssertSoftmax(int[] shape, long? axis, float range = 4) =>
        OperatorTestHarness.AssertMatchesOrt("Softmax", [TestInput.Floats("x", shape, 1, -range, range)],
            axis is null ? null : new TestAttributes().Int("axis", axis.Value), relative: 1e-5, absolute: 1e-7);

    [Test]
    public void The_default_axis_is_the_last() => AssertSoftmax([3, 17], null);

    [TestCase(-1)]
    [TestCase(2)]
    public void The_last_axis_matches_ORT(int axis) => AssertSoftmax([2, 5, 33], axis);

    [Test]
    public void Long_rows_match_ORT() => AssertSoftmax([4, 5000], -1, 20);

    [Test]
    public void Axis_1_like_the_YOLOv8_DFL_head_matches_ORT() => AssertSoftmax([1, 16, 4, 300], 1, 10);

    [Test]
    public void A_large_axis_1_softmax_runs_in_parallel_and_matches_ORT() => AssertSoftmax([2, 16, 4, 700], 1, 10);

    [TestCase(0)]
    [TestCase(-2)]
    [TestCase(-3)]
    public void Other_axes_match_ORT(int axis) => AssertSoftmax([5, 3, 7], axis);

    [Test]
    public void A_1D_input_matches_ORT() => AssertSoftmax([9], 0);

    [Test]
    public void Large_values_do_not_overflow() =>
        OperatorTestHarness.AssertMatchesOrt("Softmax",
            [new TestInput("x", ElementType.Float32, [2, 3, 2], new float[] { 1000, -1000, 999, 0, 1001, 88, 50, 89, 51, 90, -3, 91 })],
            new TestAttributes().Int("axis", 1), relative: 1e-5, absolute: 1e-7);

    [TestCase(-1)]
    [TestCase(1)]
    public void Float16_matches_ORT(int axis) =>
        Float16Runs.AssertMatchesFloat32("Softmax", [TestInput.Floats("x", [2, 8, 12], 4, -3, 3)],
            new TestAttributes().Int("axis", axis), relative: 1e-5, absolute: 1e-7);

    [Test]
    public void An_axis_out_of_range_is_rejected() =>
        OperatorTestHarness.AssertRejected("Softmax", [TestInput.Floats("x", [2, 3], 1)],
            new TestAttributes().Int("axis", 2), "axis 2 is out of range for rank 2");

    [Test]
    public void A_scalar_is_rejected() =>
        OperatorTestHarness.AssertRejected("Softmax", [new TestInput("x", ElementType.Float32, [], new float[] { 1 })],
            null, "got a scalar");

    [Test]
    public void Int64_is_rejected() =>
        OperatorTestHarness.AssertRejected("Softmax", [TestInput.Int64s("x", 1, 2, 3)], null, "must be float32 or float16, not Int64");
}
