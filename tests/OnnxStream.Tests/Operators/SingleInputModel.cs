using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Graph.OnnxFormat;
using OrtSession = Microsoft.ML.OnnxRuntime.InferenceSession;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// A test graph of one float32 input <c>x</c> and one float32 output <c>out</c>, run in ONNX Runtime (the oracle) and in
/// this engine, for the graph passes' tests; its own temporary folder.
/// </summary>
internal sealed class SingleInputModel(OnnxTestModel model, int[] shape) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("onnxstream-single-input-").FullName;

    /// <summary>ONNX Runtime's output for <paramref name="x"/>.</summary>
    public float[] RunOrt(float[] x)
    {
        using var session = new OrtSession(model.ToModel().ToByteArray());
        using var input = OrtValue.CreateTensorValueFromMemory(x, shape.Select(d => (long)d).ToArray());
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["x"], [input], ["out"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>This engine's graph as the session runs it, its output for <paramref name="x"/> and the run's peak tracked bytes; checks nothing leaked.</summary>
    public (ModelGraph Graph, float[] Output, long Peak) Run(float[] x, InferenceSessionOptions options)
    {
        using var session = new OnnxStream.Runtime.InferenceSession(ModelLoader.Load(model.Save(_folder)), options);
        using var input = Tensor.From<float>(x, shape, session.Allocator);
        (ModelGraph, float[], long) outcome;
        using (var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input }))
            outcome = (session.Graph, result.Outputs["out"].Span<float>().ToArray(), result.PeakBytes);
        Assert.That(session.Allocator.LiveBlocks, Is.EqualTo(1), "the session leaked tensors (the input is the caller's)");
        return outcome;
    }

    /// <summary>Asserts <paramref name="actual"/> equals <paramref name="expected"/> to <paramref name="relative"/> of its largest magnitude.</summary>
    public static void AssertClose(float[] actual, float[] expected, double relative, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        var scale = expected.Max(v => Math.Abs(v));
        for (var i = 0; i < expected.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(relative * scale), $"{what}: element {i}");
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
