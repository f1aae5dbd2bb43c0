using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// DepthToSpace against ONNX Runtime (DCR and CRD, block sizes 1-4, float32 and float16) and, for the
/// element types ORT's CPU kernel lacks, against a direct index formula. A permutation: compared exactly.
/// </summary>
internal sealed class DepthToSpaceOperatorTests
{
    private static readonly (int[] Shape, int Block)[] Geometries =
    [
        ([1, 4, 2, 3], 2), ([2, 8, 3, 3], 2), ([1, 18, 2, 5], 3), ([2, 3, 4, 5], 1), ([1, 16, 1, 1], 4),
        ([1, 64, 40, 40], 2), ([2, 8, 0, 3], 2), ([0, 4, 2, 2], 2),
    ];

    private static IEnumerable<TestCaseData> Cases() =>
        from type in new[] { ElementType.Float32, ElementType.Float16 }
        from mode in new[] { null, "DCR", "CRD" }
        from g in Geometries
        select new TestCaseData(type, mode, g.Shape, g.Block)
            .SetArgDisplayNames(type.ToString(), mode ?? "default", OperatorInputs.Show(g.Shape), $"b{g.Block}");

    private static TestAttributes Attributes(string? mode, int block)
    {
        var attributes = new TestAttributes().Int("blocksize", block);
        return mode is null ? attributes : attributes.String("mode", mode);
    }

    [TestCaseSource(nameof(Cases))]
    public void Matches_ORT(ElementType type, string? mode, int[] shape, int block) =>
        OperatorTestHarness.AssertMatchesOrt("DepthToSpace", [OperatorInputs.Of(type, "x", shape, 1)], Attributes(mode, block), opset: 13);

    [Test]
    public void Other_element_types_match_the_index_formula()
    {
        foreach (var type in new[] { ElementType.Int64, ElementType.Int32, ElementType.UInt8, ElementType.Bool })
            foreach (var mode in new[] { "DCR", "CRD" })
                foreach (var (shape, block) in Geometries.Take(5))
                {
                    var x = OperatorInputs.Of(type, "x", shape, 3);
                    var result = OperatorTestHarness.RunOnnxStream("DepthToSpace", [x], Attributes(mode, block), 1, 2)[0];
                    var values = Enumerable.Range(0, x.Data.Length).Select(i => Convert.ToDouble(x.Data.GetValue(i))).ToArray();
                    var (expectedShape, expected) = Reference(values, shape, block, mode == "CRD");
                    Assert.That(result.Item1, Is.EqualTo(type));
                    Assert.That(result.Item2, Is.EqualTo(expectedShape));
                    Assert.That(result.Item3, Is.EqualTo(expected), $"{type} {mode} {OperatorInputs.Show(shape)} b{block}");
                }
    }

    /// <summary>The ONNX definition: y[n, c, h·b + i, w·b + j] = x[n, channel(c, i, j), h, w].</summary>
    private static (int[], double[]) Reference(double[] x, int[] shape, int b, bool crd)
    {
        int n = shape[0], c = shape[1], h = shape[2], w = shape[3], oc = c / (b * b);
        var y = new double[x.Length];
        for (var ni = 0; ni < n; ni++)
            for (var ci = 0; ci < oc; ci++)
                for (var hi = 0; hi < h * b; hi++)
                    for (var wi = 0; wi < w * b; wi++)
                    {
                        int i = hi % b, j = wi % b;
                        var channel = crd ? ci * b * b + i * b + j : (i * b + j) * oc + ci;
                        y[((ni * oc + ci) * h * b + hi) * w * b + wi] = x[((ni * c + channel) * h + hi / b) * w + wi / b];
                    }
        return ([n, oc, h * b, w * b], y);
    }

    [Test]
    public void Errors_are_reported()
    {
        var x = OperatorInputs.F32("x", [1, 8, 2, 2], 1);
        OperatorTestHarness.AssertRejected("DepthToSpace", [x], new TestAttributes().Int("blocksize", 2).String("mode", "RDC"),
            "mode must be \"DCR\" or \"CRD\", not \"RDC\"");
        OperatorTestHarness.AssertRejected("DepthToSpace", [x], new TestAttributes().Int("blocksize", 3), "the channel count 8 of input [1,8,2,2] is not divisible by blocksize² = 9");
        OperatorTestHarness.AssertRejected("DepthToSpace", [x], new TestAttributes().Int("blocksize", 0), "blocksize must be in 1..32768, not 0");
        OperatorTestHarness.AssertRejected("DepthToSpace", [x], null, "the blocksize attribute is required");
        OperatorTestHarness.AssertRejected("DepthToSpace", [OperatorInputs.F32("x", [8, 2, 2], 1)], new TestAttributes().Int("blocksize", 2), "input must be 4-D [N, C, H, W]");
    }
}
