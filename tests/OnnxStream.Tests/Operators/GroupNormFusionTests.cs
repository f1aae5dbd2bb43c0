using OnnxStream.Graph.Passes;
using OnnxStream.Runtime;
using OnnxStream.Tests.Graph.OnnxFormat;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// The fused group normalization (<see cref="GroupNormFusion"/>): PyTorch's pre-opset-18 GroupNorm export
/// (Reshape → InstanceNormalization → Reshape → Mul → Add), with and without the SiLU after it, against ONNX Runtime on
/// the exported graph; with x read afterwards (a residual Add, so the output cannot go over x) and with x dying in it (the
/// output goes over x); with InstanceNormalization scales and biases other than 1 and 0, so their folding into γ and β
/// is checked. Also what is not fused: an intermediate read elsewhere.
/// </summary>
internal sealed class GroupNormFusionTests
{
    private static readonly int[] Shape = [2, 12, 5, 7];
    private const int Groups = 3;

    [TestCase(true, true)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(false, false)]
    public void Fused_group_normalization_matches_ORT(bool silu, bool residual)
    {
        using var model = new SingleInputModel(Build(silu, residual, extraOutput: false), Shape);
        var x = Kernels.Reference.RandomFloats(Shape.Aggregate(1, (a, d) => a * d), 5, -3, 4);
        var expected = model.RunOrt(x);
        foreach (var threads in new[] { 1, 2 })
        {
            var (graph, actual, peak) = model.Run(x, new InferenceSessionOptions { Threads = threads });
            Assert.That(graph.Nodes.Select(n => n.OpType), Is.EqualTo(residual ? new[] { "Mul", GroupNormFusion.OpType, "Add" } : ["Mul", GroupNormFusion.OpType]));
            Assert.That(graph.Nodes[1].Attributes.GetString("activation", ""), Is.EqualTo(silu ? "silu" : ""));
            SingleInputModel.AssertClose(actual, expected, 1e-5, $"threads {threads}");
            // Unfused, the normalized copy beside its input, the first Reshape's copy of h (when h lives on) and Sigmoid's
            // output beside its input add activations; fused, the output goes over h when h dies.
            var (unfusedGraph, unfused, unfusedPeak) = model.Run(x, new InferenceSessionOptions { Threads = threads, FuseGroupNorm = false });
            Assert.That(unfusedGraph.Nodes.Any(n => n.OpType == GroupNormFusion.OpType), Is.False);
            SingleInputModel.AssertClose(unfused, expected, 1e-5, "unfused");
            var activation = Shape.Aggregate(1, (a, d) => a * d) * sizeof(float);
            // Slack: whether the prefetcher holds the next small weight (tens of bytes) at the peak depends on timing.
            Assert.That(peak, Is.LessThanOrEqualTo(unfusedPeak - activation + 256), "peak tracked bytes, fused vs unfused");
        }
        // float16 storage: x and the output in float16, the arithmetic in float32.
        var (_, half, _) = model.Run(x, new InferenceSessionOptions { Threads = 2, Precision = Precision.Float16Storage });
        SingleInputModel.AssertClose(half, expected, 3e-3, "fp16-storage");
    }

    [Test]
    public void An_intermediate_read_elsewhere_keeps_the_exported_nodes()
    {
        using var model = new SingleInputModel(Build(silu: true, residual: false, extraOutput: true), Shape);
        var x = Kernels.Reference.RandomFloats(Shape.Aggregate(1, (a, d) => a * d), 6, -1, 1);
        var (graph, actual, _) = model.Run(x, new InferenceSessionOptions { Threads = 2 });
        Assert.That(graph.Nodes.Any(n => n.OpType == GroupNormFusion.OpType), Is.False, "fused although the normalized tensor is a graph output");
        SingleInputModel.AssertClose(actual, model.RunOrt(x), 1e-5, "unfused");
    }

    /// <summary>
    /// x [2,12,5,7] → h = 1.5·x → GroupNorm(3 groups; InstanceNormalization scale and bias not 1 and 0) [→ SiLU] → out, or
    /// out = that + h (<paramref name="residual"/>); with <paramref name="extraOutput"/> the InstanceNormalization's output is a graph output too.
    /// </summary>
    private static OnnxTestModel Build(bool silu, bool residual, bool extraOutput)
    {
        var channels = Shape[1];
        var model = new OnnxTestModel { OpsetVersion = 17 };
        model.Input("x", Shape.Select(d => (long)d).ToArray())
            .Initializer(OnnxTestModel.Floats("factor", [1.5f]))
            .Initializer(OnnxTestModel.Int64s("grouping", [0, Groups, -1], 3))
            .Initializer(OnnxTestModel.Int64s("restoring", Shape.Select(d => (long)d).ToArray(), 4))
            .Initializer(OnnxTestModel.Floats("s", Kernels.Reference.RandomFloats(Groups, 1, 0.5f, 1.5f), Groups))
            .Initializer(OnnxTestModel.Floats("b", Kernels.Reference.RandomFloats(Groups, 2, -0.5f, 0.5f), Groups))
            .Initializer(OnnxTestModel.Floats("gamma", Kernels.Reference.RandomFloats(channels, 3, 0.5f, 1.5f), channels, 1, 1))
            .Initializer(OnnxTestModel.Floats("beta", Kernels.Reference.RandomFloats(channels, 4, -0.5f, 0.5f), channels, 1, 1))
            .Node("Mul", ["x", "factor"], ["h"], "pre")
            .Node("Reshape", ["h", "grouping"], ["grouped"], "norm/reshape")
            .Node("InstanceNormalization", ["grouped", "s", "b"], ["normalized"], "norm/instance_norm", new Onnx.AttributeProto { Name = "epsilon", Type = Onnx.AttributeProto.Types.AttributeType.Float, F = 1e-6f })
            .Node("Reshape", ["normalized", "restoring"], ["restored"], "norm/reshape_1")
            .Node("Mul", ["restored", "gamma"], ["scaled"], "norm/mul")
            .Node("Add", ["scaled", "beta"], ["shifted"], "norm/add");
        var y = "shifted";
        if (silu)
        {
            model.Node("Sigmoid", ["shifted"], ["gate"], "sigmoid").Node("Mul", ["gate", "shifted"], ["activated"], "silu");
            y = "activated";
        }
        if (residual) model.Node("Add", [y, "h"], ["out"], "residual");
        else model.Node("Identity", [y], ["out"], "identity");
        model.Output("out", Shape.Select(d => (long)d).ToArray());
        if (extraOutput) model.Output("normalized", Shape[0], Groups, Shape[1..].Aggregate(1, (a, d) => a * d) / Groups);
        return model;
    }
}
