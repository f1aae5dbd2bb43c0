using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// Einsum against ONNX Runtime: matmul and attention patterns (the batched-matmul fast path), operands
/// that need permuting, reductions, diagonals, ellipses with broadcasting, implicit outputs, three
/// operands, float16. Tolerances: float32 1e-5 relative + 1e-5 absolute (sums of up to 64 products of
/// values in [-1, 1], accumulated in another order than ORT's); float16 2e-3 relative + 2e-3 absolute
/// (a float16 ulp, as both sides round float32 sums).
/// </summary>
internal sealed class EinsumOperatorTests
{
    /// <summary>Equation and input shapes.</summary>
    private static readonly (string Equation, int[][] Shapes)[] Equations =
    [
        // Straight batched matmuls, no copies.
        ("ij,jk->ik", [[3, 4], [4, 5]]),
        ("bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]),
        ("bhid,bhjd->bhij", [[2, 3, 5, 8], [2, 3, 6, 8]]),
        ("bhij,bhjd->bhid", [[2, 3, 5, 6], [2, 3, 6, 8]]),
        ("bhid,bhjd->bhij", [[1, 8, 77, 64], [1, 8, 77, 64]]),
        ("ij,kj->ik", [[3, 4], [5, 4]]),
        ("bij,jk->bik", [[2, 3, 4], [4, 5]]),
        ("i,i->", [[7], [7]]),
        ("i,j->ij", [[3], [4]]),
        ("bi,bi->b", [[3, 5], [3, 5]]),
        // Operands or results that need permuting.
        ("ji,jk->ik", [[4, 3], [4, 5]]),
        ("ij,bjk->bik", [[3, 4], [2, 4, 5]]),
        ("bhqd,bkhd->bhqk", [[2, 3, 4, 8], [2, 5, 3, 8]]),
        ("bqhd,bkhd->bhqk", [[2, 4, 3, 8], [2, 5, 3, 8]]),
        ("bhqk,bkhd->bqhd", [[2, 3, 4, 5], [2, 5, 3, 8]]),
        ("ij,jk->ki", [[3, 4], [4, 5]]),
        ("abc,cd->dba", [[2, 3, 4], [4, 5]]),
        ("ibj,kjb->bik", [[3, 2, 4], [5, 4, 2]]),
        // Reductions and single operands.
        ("ij->ji", [[3, 4]]),
        ("ij->", [[3, 4]]),
        ("ij->i", [[3, 4]]),
        ("ij->j", [[3, 4]]),
        ("ijk->jk", [[300, 20, 10]]),
        ("ijk->ik", [[3, 4, 5]]),
        ("ijk->i", [[300, 20, 10]]),
        ("ij,jk->i", [[3, 4], [4, 5]]),
        ("ij,kl->jk", [[3, 4], [5, 6]]),
        // Diagonals.
        ("ii->i", [[4, 4]]),
        ("ii", [[4, 4]]),
        ("iij->ji", [[3, 3, 5]]),
        ("ii,ij->j", [[4, 4], [4, 3]]),
        // Implicit output.
        ("ij,jk", [[3, 4], [4, 5]]),
        ("ba,ca", [[3, 4], [5, 4]]),
        ("i,j", [[3], [4]]),
        ("...ij,...jk", [[2, 3, 4], [2, 4, 5]]),
        // Ellipses and broadcasting.
        ("...ij,...jk->...ik", [[2, 3, 4], [2, 4, 5]]),
        ("...ij,...jk->...ik", [[2, 1, 3, 4], [1, 5, 4, 6]]),
        ("...ij->...ji", [[2, 3, 4, 5]]),
        ("i...j->ji...", [[2, 3, 4, 5]]),
        ("i...->...", [[3, 2, 4]]),
        ("...i,...i->...", [[2, 3, 5], [2, 3, 5]]),
        ("b...d,b...d->b...", [[2, 3, 4, 6], [2, 3, 4, 6]]),
        ("ij,jk->ik", [[3, 1], [4, 5]]),
        ("ij,jk->ik", [[3, 4], [1, 5]]),
        ("ij,jk->ik", [[3, 1], [1, 5]]),
        (",ij->ij", [[], [3, 4]]),
        ("i,i->", [[1], [1]]),
        // Three operands, uppercase labels.
        ("ij,jk,kl->il", [[2, 3], [3, 4], [4, 5]]),
        ("ab,bc,cd", [[2, 3], [3, 4], [4, 5]]),
        ("i,i,i->i", [[6], [6], [6]]),
        ("bi,bj,bk->bijk", [[2, 3], [2, 4], [2, 5]]),
        ("Ab,bC->AC", [[3, 4], [4, 5]]),
        ("iJ,Jk->ki", [[3, 4], [4, 5]]),
        // Spaces are ignored.
        (" ij , jk -> ik ", [[3, 4], [4, 5]]),
    ];

    private static IEnumerable<TestCaseData> Float32Cases() =>
        Equations.Select(e => new TestCaseData(e.Equation, e.Shapes)
            .SetArgDisplayNames($"'{e.Equation}'", string.Join(' ', e.Shapes.Select(OperatorInputs.Show))));

    [TestCaseSource(nameof(Float32Cases))]
    public void Float32_matches_ORT(string equation, int[][] shapes) =>
        OperatorTestHarness.AssertMatchesOrt("Einsum", shapes.Select((s, i) => (TestInput?)OperatorInputs.F32($"x{i}", s, i + 1)).ToArray(),
            new TestAttributes().String("equation", equation), relative: 1e-5, absolute: 1e-5, opset: 12);

    private static IEnumerable<TestCaseData> Float16Cases() =>
        Equations.Where((_, i) => i % 3 == 0).Select(e => new TestCaseData(e.Equation, e.Shapes)
            .SetArgDisplayNames($"'{e.Equation}'", string.Join(' ', e.Shapes.Select(OperatorInputs.Show))));

    [TestCaseSource(nameof(Float16Cases))]
    public void Float16_matches_ORT(string equation, int[][] shapes) =>
        OperatorTestHarness.AssertMatchesOrt("Einsum", shapes.Select((s, i) => (TestInput?)OperatorInputs.F16($"x{i}", s, i + 1)).ToArray(),
            new TestAttributes().String("equation", equation), relative: 2e-3, absolute: 2e-3, opset: 12);

    [Test]
    public void Empty_dimensions_match_ORT()
    {
        // An empty output, and a sum over an empty dimension (zeros).
        OperatorTestHarness.AssertMatchesOrt("Einsum", [OperatorInputs.F32("a", [0, 4], 1), OperatorInputs.F32("b", [4, 5], 2)],
            new TestAttributes().String("equation", "ij,jk->ik"), opset: 12);
        OperatorTestHarness.AssertMatchesOrt("Einsum", [OperatorInputs.F32("a", [3, 0], 1), OperatorInputs.F32("b", [0, 5], 2)],
            new TestAttributes().String("equation", "ij,jk->ik"), opset: 12);
    }

    [Test]
    public void Uppercase_labels_sort_before_lowercase_in_the_implicit_output()
    {
        // numpy's (and the ONNX reference's) order; ORT 1.31 mislabels uppercase letters in implicit mode.
        var a = OperatorInputs.F32("a", [3, 4], 1);
        var b = OperatorInputs.F32("b", [4, 5], 2);
        var implicitResult = OperatorTestHarness.RunOnnxStream("Einsum", [a, b], new TestAttributes().String("equation", "aj,jB"), 1, 1)[0];
        var explicitResult = OperatorTestHarness.RunOnnxStream("Einsum", [a, b], new TestAttributes().String("equation", "aj,jB->Ba"), 1, 1)[0];
        Assert.That(implicitResult.Item2, Is.EqualTo(new[] { 5, 3 }));
        Assert.That(implicitResult.Item3, Is.EqualTo(explicitResult.Item3));
    }

    [Test]
    public void Ellipses_of_different_ranks_broadcast_like_numpy()
    {
        // ORT requires every "..." to cover the same number of dimensions; numpy right-aligns them.
        var a = OperatorInputs.F32("a", [2, 3, 4], 1);
        var b = OperatorInputs.F32("b", [4, 5], 2);
        var ellipsis = OperatorTestHarness.RunOnnxStream("Einsum", [a, b], new TestAttributes().String("equation", "...ij,...jk->...ik"), 1, 1)[0];
        var named = OperatorTestHarness.RunOnnxStream("Einsum", [a, b], new TestAttributes().String("equation", "bij,jk->bik"), 1, 1)[0];
        Assert.That(ellipsis.Item2, Is.EqualTo(new[] { 2, 3, 5 }));
        Assert.That(ellipsis.Item3, Is.EqualTo(named.Item3));
    }

    [Test]
    public void Errors_are_reported()
    {
        TestInput[] two = [OperatorInputs.F32("a", [3, 4], 1), OperatorInputs.F32("b", [4, 5], 2)];
        void Rejected(string equation, string message, TestInput[]? inputs = null) =>
            OperatorTestHarness.AssertRejected("Einsum", inputs ?? two, new TestAttributes().String("equation", equation), message);

        Rejected("ij,jk->ik->i", "has more than one '->'");
        Rejected("ij->ij", "has 1 input term(s) but the node has 2 input(s)");
        Rejected("ij,j1->i", "has '1'; labels are the letters a-z and A-Z");
        Rejected("ij,j.k->i", "has a '.' that is not part of its one '...'");
        Rejected("...i...,jk->i", "has a '.' that is not part of its one '...'");
        Rejected("ijk,jk->i", "term 'ijk' of equation 'ijk,jk->i' has 3 label(s) but input 0 [3,4] has rank 2");
        Rejected("ij,k->i", "term 'k' of equation 'ij,k->i' has 1 label(s) but input 1 [4,5] has rank 2");
        Rejected("ij,ik->jk", "label 'i' has size 3 in one input and 4 in input 1 [4,5]");
        Rejected("ij,jk->iz", "output label 'z' of equation 'ij,jk->iz' is in no input term");
        Rejected("ij,jk->ii", "output label 'i' of equation 'ij,jk->ii' appears more than once");
        Rejected("ii->i", "label 'i' is repeated in term 'ii' (a diagonal) but input 0 [3,4] has sizes 3 and 4", [two[0]]);
        Rejected("...ij->ij", "the inputs' '...' covers 1 dimension(s) but the output term 'ij' has no '...'", [OperatorInputs.F32("a", [2, 3, 4], 1)]);
        Rejected("ij,jk->ik", "inputs must be float32 or float16; input 1 is Int64", [two[0], OperatorInputs.I64("b", [4, 5], 2)]);
        Rejected("ij,jk->ik", "inputs must all have one type; input 0 is Float32, input 1 is Float16", [two[0], OperatorInputs.F16("b", [4, 5], 2)]);
        OperatorTestHarness.AssertRejected("Einsum", two, null, "the equation attribute is required");
    }
}
