using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Reshape against ONNX Runtime.</summary>
internal sealed class ReshapeOperatorTests
{
    [TestCase(new[] { 2, 3, 4 }, new long[] { 6, 4 })]
    [TestCase(new[] { 2, 3, 4 }, new long[] { -1 })]
    [TestCase(new[] { 2, 3, 4 }, new long[] { 0, -1 })]
    [TestCase(new[] { 2, 3, 4 }, new long[] { 0, 0, 2, 2 })]
    [TestCase(new[] { 2, 3, 4 }, new long[] { 3, -1, 0 })]
    [TestCase(new[] { 1, 144, 8, 8 }, new long[] { 1, 144, -1 })]
    [TestCase(new[] { 1, 64, 84 }, new long[] { 1, 4, 16, 84 })]
    [TestCase(new[] { 1 }, new long[] { })]
    public void Matches_ORT(int[] shape, long[] target) =>
        OperatorTestHarness.AssertMatchesOrt("Reshape", [TestInput.Floats("data", shape, 1), TestInput.Int64s("shape", target)]);

    [Test]
    public void Allowzero_keeps_zero_dimensions() =>
        OperatorTestHarness.AssertMatchesOrt("Reshape",
            [TestInput.Floats("data", [0, 3], 1), TestInput.Int64s("shape", 3, 0)], new TestAttributes().Int("allowzero", 1), opset: 14);

    [Test]
    public void Int64_and_large_data_match_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("Reshape",
            [TestInput.Int64s("data", 1, 2, 3, 4, 5, 6), TestInput.Int64s("shape", 3, -1)]);
        OperatorTestHarness.AssertMatchesOrt("Reshape",
            [TestInput.Floats("data", [1, 144, 40, 40], 2), TestInput.Int64s("shape", 1, 144, -1)]);
    }

    [Test]
    public void A_mismatched_element_count_is_rejected() =>
        OperatorTestHarness.AssertRejected("Reshape", [TestInput.Floats("data", [2, 3], 1), TestInput.Int64s("shape", 4, 2)], null,
            "cannot reshape [2,3] (6 elements) to [4,2] (8 elements)");

    [Test]
    public void An_uninferable_minus_one_is_rejected() =>
        OperatorTestHarness.AssertRejected("Reshape", [TestInput.Floats("data", [2, 3], 1), TestInput.Int64s("shape", 4, -1)], null,
            "6 is not a multiple of 4");

    [Test]
    public void Two_minus_ones_are_rejected() =>
        OperatorTestHarness.AssertRejected("Reshape", [TestInput.Floats("data", [2, 3], 1), TestInput.Int64s("shape", -1, -1)], null,
            "more than one -1");

    [Test]
    public void Allowzero_with_minus_one_and_zero_is_rejected() =>
        OperatorTestHarness.AssertRejected("Reshape", [TestInput.Floats("data", [0, 3], 1), TestInput.Int64s("shape", 0, -1)],
            new TestAttributes().Int("allowzero", 1), "-1 cannot be inferred");
}
