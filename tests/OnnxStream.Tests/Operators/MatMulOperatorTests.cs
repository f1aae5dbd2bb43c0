using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// MatMul and Gemm against ONNX Runtime. float32 tolerance 1e-5 relative + 1e-5 absolute (sums of K
/// products of values in [-1, 1] in a different order); float16 1e-2 relative + 1e-2 absolute (the
/// inputs are float16, the products are summed in float32 here and in ORT's MLAS; the result is rounded
/// to float16, whose spacing near the sums' magnitude is about 1e-2).
/// </summary>
internal sealed class MatMulOperatorTests
{
    private static IEnumerable<TestCaseData> MatMulShapes()
    {
        int[][][] pairs =
        [
            [[3, 4], [4, 5]],
            [[4], [4, 5]],
            [[3, 4], [4]],
            [[4], [4]],
            [[2, 3, 4], [4, 5]], // Linear layer: B has no batch
            [[1, 77, 32], [32, 96]],
            [[2, 3, 4], [2, 4, 5]], // batches match
            [[3, 4], [2, 4, 5]], // A broadcast
            [[2, 1, 3, 4], [1, 3, 4, 5]], // both broadcast
            [[2, 8, 16, 40], [2, 8, 40, 16]], // attention Q·Kᵀ
            [[1, 8, 77, 77], [1, 8, 77, 40]], // attention P·V
            [[5, 1, 4], [4, 6]],
            [[2, 3, 0], [0, 5]], // K = 0: zeros
            [[0, 4], [4, 5]],
            [[3, 4], [4, 0]],
        ];
        foreach (var type in new[] { ElementType.Float32, ElementType.Float16 })
            foreach (var pair in pairs)
                yield return new TestCaseData(type, pair[0], pair[1])
                    .SetArgDisplayNames(type.ToString(), OperatorInputs.Show(pair[0]), OperatorInputs.Show(pair[1]));
    }

    [TestCaseSource(nameof(MatMulShapes))]
    public void MatMul_matches_ORT(ElementType type, int[] a, int[] b)
    {
        var half = type == ElementType.Float16;
        OperatorTestHarness.AssertMatchesOrt("MatMul", [OperatorInputs.Of(type, "a", a, 1), OperatorInputs.Of(type, "b", b, 2)],
            relative: half ? 1e-2 : 1e-5, absolute: half ? 1e-2 : 1e-5);
    }

    [TestCase(ElementType.Int64)]
    [TestCase(ElementType.Int32)]
    public void Integer_MatMul_matches_ORT(ElementType type)
    {
        OperatorTestHarness.AssertMatchesOrt("MatMul", [OperatorInputs.Of(type, "a", [2, 3, 4], 1), OperatorInputs.Of(type, "b", [4, 5], 2)], relative: 0, absolute: 0);
        OperatorTestHarness.AssertMatchesOrt("MatMul", [OperatorInputs.Of(type, "a", [3, 4], 1), OperatorInputs.Of(type, "b", [2, 4, 5], 2)], relative: 0, absolute: 0);
    }

    [Test]
    public void MatMul_errors_are_reported()
    {
        OperatorTestHarness.AssertRejected("MatMul", [OperatorInputs.F32("a", [3, 4], 1), OperatorInputs.F32("b", [5, 6], 2)], null, "has 4 columns but B [5,6] has 5 rows");
        OperatorTestHarness.AssertRejected("MatMul", [OperatorInputs.F32("a", [2, 3, 4], 1), OperatorInputs.F32("b", [3, 4, 5], 2)], null, "do not broadcast");
        OperatorTestHarness.AssertRejected("MatMul", [OperatorInputs.I64("a", [3, 4], 1), OperatorInputs.F32("b", [4, 5], 2)], null, "must both be float32/float16");
    }

    private static IEnumerable<TestCaseData> GemmCases()
    {
        int[][] cShapes = [[], [1], [6], [1, 6], [5, 1], [5, 6]];
        foreach (var type in new[] { ElementType.Float32, ElementType.Float16 })
            foreach (var transA in new[] { 0, 1 })
                foreach (var transB in new[] { 0, 1 })
                    foreach (var c in cShapes.Select(s => (int[]?)s).Append(null))
                        yield return new TestCaseData(type, transA, transB, c)
                            .SetArgDisplayNames(type.ToString(), $"transA={transA}", $"transB={transB}", c is null ? "no C" : OperatorInputs.Show(c));
    }

    [TestCaseSource(nameof(GemmCases))]
    public void Gemm_matches_ORT(ElementType type, int transA, int transB, int[]? c)
    {
        const int m = 5, k = 7, n = 6;
        var half = type == ElementType.Float16;
        var inputs = new List<TestInput?>
        {
            OperatorInputs.Of(type, "a", transA == 1 ? [k, m] : [m, k], 1),
            OperatorInputs.Of(type, "b", transB == 1 ? [n, k] : [k, n], 2),
        };
        if (c is not null) inputs.Add(OperatorInputs.Of(type, "c", c, 3));
        foreach (var (alpha, beta) in new[] { (1f, 1f), (0.5f, -2f), (2f, 0f) })
        {
            var attributes = new TestAttributes().Int("transA", transA).Int("transB", transB).Float("alpha", alpha).Float("beta", beta);
            OperatorTestHarness.AssertMatchesOrt("Gemm", inputs, attributes, relative: half ? 1e-2 : 1e-5, absolute: half ? 2e-2 : 1e-5);
        }
    }

    [Test]
    public void Gemm_with_default_attributes_and_a_large_product_matches_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("Gemm", [OperatorInputs.F32("a", [2, 320], 1), OperatorInputs.F32("b", [1280, 320], 2), OperatorInputs.F32("c", [1280], 3)],
            new TestAttributes().Int("transB", 1), relative: 1e-5, absolute: 1e-5);
        OperatorTestHarness.AssertMatchesOrt("Gemm", [OperatorInputs.F32("a", [64, 96], 1), OperatorInputs.F32("b", [96, 80], 2)], relative: 1e-5, absolute: 1e-5);
    }

    [Test]
    public void Gemm_errors_are_reported()
    {
        OperatorTestHarness.AssertRejected("Gemm", [OperatorInputs.F32("a", [3, 4], 1), OperatorInputs.F32("b", [5, 6], 2)], null, "has K = 4 but B [5,6] (transB 0) has K = 5");
        OperatorTestHarness.AssertRejected("Gemm", [OperatorInputs.F32("a", [2, 3, 4], 1), OperatorInputs.F32("b", [4, 5], 2)], null, "A must be 2-D");
        OperatorTestHarness.AssertRejected("Gemm", [OperatorInputs.F32("a", [3, 4], 1), OperatorInputs.F32("b", [4, 5], 2), OperatorInputs.F32("c", [2, 5], 3)], null, "does not broadcast to [3,5]");
        OperatorTestHarness.AssertRejected("Gemm", [OperatorInputs.F32("a", [3, 4], 1), OperatorInputs.F32("b", [4, 5], 2)], new TestAttributes().Int("transA", 2), "transA 2 must be 0 or 1");
    }
}
