using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Transpose against ONNX Runtime.</summary>
internal sealed class TransposeOperatorTests
{
    private static IEnumerable<TestCaseData> Perms() =>
        from perm in new long[][]
        {
            [0, 1, 2, 3], [0, 2, 1, 3], [0, 1, 3, 2], [0, 2, 3, 1], [0, 3, 1, 2], [3, 2, 1, 0], [1, 0, 3, 2], [2, 0, 3, 1],
        }
        select new TestCaseData(perm).SetArgDisplayNames($"[{string.Join(',', perm)}]");

    [TestCaseSource(nameof(Perms))]
    public void Float32_4d_matches_ORT(long[] perm) =>
        OperatorTestHarness.AssertMatchesOrt("Transpose", [TestInput.Floats("x", [2, 3, 5, 7], 1)], new TestAttributes().Ints("perm", perm));

    [TestCaseSource(nameof(Perms))]
    public void Large_float32_4d_matches_ORT_with_threads(long[] perm) =>
        OperatorTestHarness.AssertMatchesOrt("Transpose", [TestInput.Floats("x", [2, 33, 20, 45], 2)], new TestAttributes().Ints("perm", perm));

    [Test]
    public void Yolo_dfl_transpose_matches_ORT() =>
        OperatorTestHarness.AssertMatchesOrt("Transpose", [TestInput.Floats("x", [1, 4, 16, 840], 3)], new TestAttributes().Ints("perm", 0, 2, 1, 3));

    [Test]
    public void The_default_reverses_the_axes()
    {
        OperatorTestHarness.AssertMatchesOrt("Transpose", [TestInput.Floats("x", [2, 3, 4], 4)]);
        OperatorTestHarness.AssertMatchesOrt("Transpose", [TestInput.Floats("x", [70, 90], 5)]);
    }

    [Test]
    public void Other_element_types_match_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("Transpose",
            [new TestInput("x", ElementType.Int64, [3, 4, 5], Enumerable.Range(0, 60).Select(v => (long)v * 7 - 100).ToArray())],
            new TestAttributes().Ints("perm", 2, 0, 1));
        OperatorTestHarness.AssertMatchesOrt("Transpose",
            [new TestInput("x", ElementType.Float16, [6, 40], Array.ConvertAll(OperatorTestHarness.RandomFloats(240, 6), v => (Half)v))]);
        OperatorTestHarness.AssertMatchesOrt("Transpose",
            [new TestInput("x", ElementType.UInt8, [2, 3, 40], Enumerable.Range(0, 240).Select(v => (byte)v).ToArray())],
            new TestAttributes().Ints("perm", 2, 1, 0));
    }

    [Test]
    public void A_bad_perm_is_rejected()
    {
        OperatorTestHarness.AssertRejected("Transpose", [TestInput.Floats("x", [2, 3, 4], 1)], new TestAttributes().Ints("perm", 0, 1, 1),
            "perm [0,1,1] is not a permutation of 0..2");
        OperatorTestHarness.AssertRejected("Transpose", [TestInput.Floats("x", [2, 3, 4], 1)], new TestAttributes().Ints("perm", 1, 0),
            "perm [1,0] has 2 axes but the input [2,3,4] has rank 3");
    }
}
