using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Concat against ONNX Runtime.</summary>
internal sealed class ConcatOperatorTests
{
    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    [TestCase(-1)]
    [TestCase(-3)]
    public void Three_float32_inputs_match_ORT(int axis)
    {
        int[] shape = [2, 3, 4];
        var inputs = new TestInput?[3];
        for (var i = 0; i < 3; i++)
        {
            var s = (int[])shape.Clone();
            s[axis < 0 ? axis + 3 : axis] = i + 1;
            inputs[i] = TestInput.Floats($"x{i}", s, i + 1);
        }
        OperatorTestHarness.AssertMatchesOrt("Concat", inputs, new TestAttributes().Int("axis", axis));
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(-1)]
    public void Three_int64_inputs_match_ORT(int axis)
    {
        var inputs = new TestInput?[3];
        for (var i = 0; i < 3; i++)
        {
            int[] s = [3, 2];
            s[axis < 0 ? axis + 2 : axis] = i + 1;
            var count = (int)Shapes.ElementCount(s);
            inputs[i] = new TestInput($"x{i}", ElementType.Int64, s, Enumerable.Range(0, count).Select(v => (long)(v + 100 * i) - 50).ToArray());
        }
        OperatorTestHarness.AssertMatchesOrt("Concat", inputs, new TestAttributes().Int("axis", axis));
    }

    [Test]
    public void Float16_and_uint8_inputs_match_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("Concat",
        [
            new TestInput("a", ElementType.Float16, [2, 3], Array.ConvertAll(OperatorTestHarness.RandomFloats(6, 1), v => (Half)v)),
            new TestInput("b", ElementType.Float16, [2, 1], Array.ConvertAll(OperatorTestHarness.RandomFloats(2, 2), v => (Half)v)),
        ], new TestAttributes().Int("axis", 1));
        OperatorTestHarness.AssertMatchesOrt("Concat",
        [
            new TestInput("a", ElementType.UInt8, [1, 3], new byte[] { 1, 2, 3 }),
            new TestInput("b", ElementType.UInt8, [2, 3], new byte[] { 4, 5, 6, 7, 8, 9 }),
        ], new TestAttributes().Int("axis", 0));
    }

    [Test]
    public void An_input_empty_along_the_axis_is_skipped() =>
        OperatorTestHarness.AssertMatchesOrt("Concat",
        [
            TestInput.Floats("a", [2, 3, 2], 1),
            TestInput.Floats("b", [2, 0, 2], 2),
            TestInput.Floats("c", [2, 1, 2], 3),
        ], new TestAttributes().Int("axis", 1));

    [Test]
    public void Large_inputs_match_ORT_with_threads() =>
        OperatorTestHarness.AssertMatchesOrt("Concat",
        [
            TestInput.Floats("a", [1, 32, 40, 40], 1),
            TestInput.Floats("b", [1, 32, 40, 40], 2),
            TestInput.Floats("c", [1, 64, 40, 40], 3),
        ], new TestAttributes().Int("axis", 1));

    [Test]
    public void Mismatched_shapes_are_rejected() =>
        OperatorTestHarness.AssertRejected("Concat", [TestInput.Floats("a", [2, 3], 1), TestInput.Floats("b", [3, 3], 2)],
            new TestAttributes().Int("axis", 1), "they differ on axis 0");

    [Test]
    public void An_axis_out_of_range_is_rejected() =>
        OperatorTestHarness.AssertRejected("Concat", [TestInput.Floats("a", [2, 3], 1), TestInput.Floats("b", [2, 3], 2)],
            new TestAttributes().Int("axis", 2), "axis 2 is out of range for rank 2");
}
