using OnnxStream.Runtime;
using OnnxStream.Tests.Graph.OnnxFormat;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// The fused layer normalization (<see cref="OnnxStream.Graph.Passes.LayerNormFusion"/>): PyTorch's pre-opset-17 LayerNorm
/// export (ReduceMean, Sub, Pow, ReduceMean, Add ε, Sqrt, Div, Mul γ, Add β) against ONNX Runtime on the exported graph,
/// with fewer activation bytes at the peak than the exported chain; and a normalization over another axis left as it is.
/// </summary>
internal sealed class LayerNormFusionTests
{
    private static readonly int[] Shape = [2, 7, 48];

    [TestCase(-1, true)]
    [TestCase(2, true)]
    [TestCase(1, false)]
    public void The_exported_layer_normalization_runs_fused_and_matches_ORT(long axis, bool fused)
    {
        using var model = new SingleInputModel(Build(axis), Shape);
        var x = Kernels.Reference.RandomFloats(Shape.Aggregate(1, (a, d) => a * d), 7, -3, 5);
        var expected = model.RunOrt(x);
        var (graph, actual, peak) = model.Run(x, new InferenceSessionOptions { Threads = 2 });
        Assert.That(graph.Nodes.Count(n => n.OpType == "LayerNormalization"), Is.EqualTo(fused ? 1 : 0));
        Assert.That(graph.Nodes.Count, Is.EqualTo(fused ? 3 : 11), "Mul, the normalization, the residual Add");
        SingleInputModel.AssertClose(actual, expected, 1e-5, "fused");
        if (!fused) return;
        var (_, unfused, unfusedPeak) = model.Run(x, new InferenceSessionOptions { Threads = 2, FuseLayerNorm = false });
        SingleInputModel.AssertClose(unfused, expected, 1e-5, "unfused");
        // Slack: whether the prefetcher holds the next small weight at the peak depends on timing.
        Assert.That(peak, Is.LessThanOrEqualTo(unfusedPeak - Shape.Aggregate(1, (a, d) => a * d) * sizeof(float) + 1024),
            "the exported chain holds d and d² beside h");
    }

    /// <summary>x [2,7,48] → h = 1.5·x → LayerNorm over <paramref name="axis"/> (ε 1e-6) → out = that + h.</summary>
    private static OnnxTestModel Build(long axis)
    {
        var features = Shape[^1];
        var model = new OnnxTestModel { OpsetVersion = 14 };
        var axes = OnnxTestModel.Ints("axes", axis);
        model.Input("x", Shape.Select(d => (long)d).ToArray())
            .Initializer(OnnxTestModel.Floats("factor", [1.5f]))
            .Initializer(OnnxTestModel.Floats("two", [2f]))
            .Initializer(OnnxTestModel.Floats("epsilon", [1e-6f]))
            .Initializer(OnnxTestModel.Floats("gamma", Kernels.Reference.RandomFloats(features, 1, 0.5f, 1.5f), features))
            .Initializer(OnnxTestModel.Floats("beta", Kernels.Reference.RandomFloats(features, 2, -0.5f, 0.5f), features))
            .Node("Mul", ["x", "factor"], ["h"], "pre")
            .Node("ReduceMean", ["h"], ["mean"], "norm/mean", axes)
            .Node("Sub", ["h", "mean"], ["centered"], "norm/sub")
            .Node("Pow", ["centered", "two"], ["squared"], "norm/pow")
            .Node("ReduceMean", ["squared"], ["variance"], "norm/variance", axes)
            .Node("Add", ["variance", "epsilon"], ["shifted"], "norm/add")
            .Node("Sqrt", ["shifted"], ["deviation"], "norm/sqrt")
            .Node("Div", ["centered", "deviation"], ["normalized"], "norm/div")
            .Node("Mul", ["normalized", "gamma"], ["scaled"], "norm/mul")
            .Node("Add", ["scaled", "beta"], ["y"], "norm/add_1")
            .Node("Add", ["y", "h"], ["out"], "residual")
            .Output("out", Shape.Select(d => (long)d).ToArray());
        return model;
    }
}
