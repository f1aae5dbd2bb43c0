using OnnxStream.Runtime;
using OnnxStream.Tests.Graph.OnnxFormat;
using OnnxStream.Tests.Operators;

namespace OnnxStream.Tests.Graph;

/// <summary>
/// <see cref="OnnxStream.Graph.Passes.ShortcutHoisting"/> on a resnet-shaped graph (h → branch of Sigmoid, Mul, 3×3 Conv;
/// shortcut 1×1 Conv of h; Add): the shortcut runs right after h's producer when its output is smaller than h, so h dies
/// with the branch's first operation (which writes over it), and the run matches ONNX Runtime; a shortcut that widens
/// stays where it is.
/// </summary>
internal sealed class ShortcutHoistingTests
{
    [TestCase(4, true)]
    [TestCase(24, false)]
    public void A_narrowing_shortcut_runs_first_and_the_result_matches_ORT(int outputChannels, bool hoisted)
    {
        const int channels = 12, size = 8;
        var model = new OnnxTestModel { OpsetVersion = 17 };
        model.Input("x", 1, channels, size, size)
            .Initializer(OnnxTestModel.Floats("factor", [1.5f]))
            .Initializer(OnnxTestModel.Floats("w3", Kernels.Reference.RandomFloats(outputChannels * channels * 9, 1, -0.2f, 0.2f), outputChannels, channels, 3, 3))
            .Initializer(OnnxTestModel.Floats("w1", Kernels.Reference.RandomFloats(outputChannels * channels, 2, -0.2f, 0.2f), outputChannels, channels, 1, 1))
            .Node("Mul", ["x", "factor"], ["h"], "pre")
            .Node("Sigmoid", ["h"], ["gate"], "sigmoid")
            .Node("Mul", ["gate", "factor"], ["scaled"], "scale")
            .Node("Conv", ["scaled", "w3"], ["branch"], "conv", OnnxTestModel.Ints("pads", 1, 1, 1, 1))
            .Node("Conv", ["h", "w1"], ["shortcut"], "shortcut")
            .Node("Add", ["branch", "shortcut"], ["out"], "residual")
            .Output("out", 1, outputChannels, size, size);
        var x = Kernels.Reference.RandomFloats(channels * size * size, 3, -2, 2);
        using var runner = new SingleInputModel(model, [1, channels, size, size]);
        var (graph, actual, _) = runner.Run(x, new InferenceSessionOptions { Threads = 2 });
        Assert.That(graph.Nodes.Select(n => n.Name), Is.EqualTo(hoisted
            ? new[] { "pre", "shortcut", "sigmoid", "scale", "conv", "residual" }
            : ["pre", "sigmoid", "scale", "conv", "shortcut", "residual"]));
        SingleInputModel.AssertClose(actual, runner.RunOrt(x), 1e-5, "output");
    }
}
