using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Graph.OnnxFormat;
using OrtSession = Microsoft.ML.OnnxRuntime.InferenceSession;

namespace OnnxStream.Tests.Graph;

/// <summary>
/// <see cref="OnnxStream.Graph.Passes.ShortcutHoisting"/> on a resnet-shaped graph (h → branch of Sigmoid, Mul, 3×3 Conv;
/// shortcut 1×1 Conv of h; Add): the shortcut runs right after h's producer when its output is smaller than h, so h dies
/// with the branch's first operation (which writes over it), and the run matches ONNX Runtime; a shortcut that widens
/// stays where it is.
/// </summary>
internal sealed class ShortcutHoistingTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-hoisting-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

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

        using var ort = new OrtSession(model.ToModel().ToByteArray());
        using var ortInput = OrtValue.CreateTensorValueFromMemory(x, [1, channels, size, size]);
        using var runOptions = new RunOptions();
        using var ortOutputs = ort.Run(runOptions, ["x"], [ortInput], ["out"]);
        var expected = ortOutputs[0].GetTensorDataAsSpan<float>().ToArray();

        using var session = new OnnxStream.Runtime.InferenceSession(ModelLoader.Load(model.Save(_folder)), new InferenceSessionOptions { Threads = 2 });
        var order = session.Graph.Nodes.Select(n => n.Name).ToArray();
        Assert.That(order, Is.EqualTo(hoisted
            ? new[] { "pre", "shortcut", "sigmoid", "scale", "conv", "residual" }
            : ["pre", "sigmoid", "scale", "conv", "shortcut", "residual"]));
        using var input = Tensor.From<float>(x, [1, channels, size, size], session.Allocator);
        using (var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input }))
        {
            var actual = result.Outputs["out"].Span<float>().ToArray();
            var scale = expected.Max(v => Math.Abs(v));
            for (var i = 0; i < expected.Length; i++)
                Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-5 * scale), $"element {i}");
        }
        Assert.That(session.Allocator.LiveBlocks, Is.EqualTo(1), "only the caller's input is left");
    }
}
