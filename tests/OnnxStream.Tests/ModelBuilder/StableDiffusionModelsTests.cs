using Microsoft.ML.OnnxRuntime;
using OnnxStream.Graph;
using OnnxStream.ModelBuilder;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using EngineSession = OnnxStream.Runtime.InferenceSession;
using OrtSession = Microsoft.ML.OnnxRuntime.InferenceSession;

namespace OnnxStream.Tests.ModelBuilder;

/// <summary>
/// The model builder's Stable Diffusion graphs: their structure against the published parameter counts
/// (computed from the graph description, no weights written), and the tiny configurations written to disk
/// and run in this engine and in ONNX Runtime. Outputs agree to 1e-4 of each output's max |value| (float32,
/// only summation order differs) and are finite and not degenerate, which also shows the seeded weights
/// keep activations in range through the whole graph.
/// </summary>
[Category("Models")]
internal sealed class StableDiffusionModelsTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-modelbuilder-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    /// <summary>
    /// The published counts (diffusers / transformers configs). The VAE decoder export includes
    /// post_quant_conv (4·4 + 4 = 20 parameters) on top of the Decoder's 49,490,179; the tiny-sd15 export
    /// in ../shared counts it the same way (194,967).
    /// </summary>
    [TestCase(StableDiffusionComponent.Sd15Unet, 859_520_964L)]
    [TestCase(StableDiffusionComponent.Sd15VaeDecoder, 49_490_179L + 20)]
    [TestCase(StableDiffusionComponent.SdxlVaeDecoder, 49_490_179L + 20)]
    [TestCase(StableDiffusionComponent.Sd15TextEncoder, 123_060_480L)]
    [TestCase(StableDiffusionComponent.SdxlTextEncoder, 123_060_480L)]
    [TestCase(StableDiffusionComponent.SdxlTextEncoder2, 694_659_840L)]
    [TestCase(StableDiffusionComponent.SdxlUnet, 2_567_463_684L)]
    public void Full_scale_parameter_counts_are_the_published_ones(StableDiffusionComponent component, long expected)
    {
        var graph = StableDiffusionModels.Build(component, ModelScale.Full);
        TestContext.Out.WriteLine($"{component}: {graph.ParameterCount:N0} parameters in {graph.ParameterTensorCount} tensors, {graph.NodeCount} nodes");
        Assert.That(graph.ParameterCount, Is.EqualTo(expected));
    }

    /// <summary>The tiny SD 1.5 configurations are those of ../shared/models/tiny-sd15, whose PyTorch exports have these parameter and initializer counts (report.json).</summary>
    [TestCase(StableDiffusionComponent.Sd15Unet, 792_964L, 208)]
    [TestCase(StableDiffusionComponent.Sd15VaeDecoder, 194_967L, 106)]
    [TestCase(StableDiffusionComponent.Sd15TextEncoder, 59_936L, 36)]
    public void Tiny_sd15_graphs_have_the_structure_of_the_pytorch_exports(StableDiffusionComponent component, long parameters, int initializers)
    {
        var graph = StableDiffusionModels.Build(component, ModelScale.Tiny);
        Assert.That(graph.ParameterCount, Is.EqualTo(parameters));
        Assert.That(graph.ParameterTensorCount, Is.EqualTo(initializers));
    }

    [TestCaseSource(typeof(StableDiffusionModels), nameof(StableDiffusionModels.ComponentNames))]
    public void Tiny_graph_runs_the_same_in_this_engine_and_in_onnx_runtime(string name)
    {
        var graph = StableDiffusionModels.Build(StableDiffusionModels.ParseComponent(name), ModelScale.Tiny);
        var written = OnnxModelWriter.Write(graph, Path.Combine(_folder, "model.onnx"), new OnnxWriteOptions { Seed = 42 });
        Assert.That(written.ExternalDataPath, Is.Null);
        var inputs = SynthInputs.For(graph);

        var expected = RunOrt(written.ModelPath, inputs);
        var actual = RunEngine(written.ModelPath, inputs, graph.Outputs.Select(o => o.Name));
        foreach (var output in graph.Outputs)
        {
            Assert.That(actual[output.Name], Has.Length.EqualTo(output.Shape.Aggregate(1L, (a, d) => a * d)), output.Name);
            var (maxReference, spread) = AssertClose($"{name} {output.Name}", expected[output.Name], actual[output.Name], 1e-4);
            Assert.That(spread, Is.GreaterThan(1e-2 * maxReference).And.GreaterThan(1e-3), $"{output.Name} varies");
        }
    }

    /// <summary>The float16 graphs are well typed: ONNX Runtime checks every node's input types when it loads them.</summary>
    [TestCaseSource(typeof(StableDiffusionModels), nameof(StableDiffusionModels.ComponentNames))]
    public void Float16_graph_is_well_typed(string name)
    {
        var graph = StableDiffusionModels.Build(StableDiffusionModels.ParseComponent(name), ModelScale.Tiny, OnnxElementType.Float16);
        var path = OnnxModelWriter.Write(graph, Path.Combine(_folder, "model.onnx")).ModelPath;
        using var session = new OrtSession(path);
        Assert.That(session.InputMetadata.Values.Select(v => v.ElementDataType.ToString()),
            Has.All.AnyOf(nameof(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16), nameof(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int64)));
    }

    /// <summary>
    /// The float16 graph (weights, activations, inputs and outputs) in this engine against the float32 graph
    /// of the same seed in ONNX Runtime: 1e-2 of max |value|, as for tiny-sd15's fp16 folders (weights
    /// rounded to float16, errors compounding over the layers).
    /// </summary>
    [TestCase(StableDiffusionComponent.Sd15VaeDecoder)]
    [TestCase(StableDiffusionComponent.Sd15TextEncoder)]
    [TestCase(StableDiffusionComponent.Sd15Unet)]
    public void Float16_graph_runs_close_to_the_float32_one(StableDiffusionComponent component)
    {
        var graph32 = StableDiffusionModels.Build(component, ModelScale.Tiny);
        var graph16 = StableDiffusionModels.Build(component, ModelScale.Tiny, OnnxElementType.Float16);
        var path32 = OnnxModelWriter.Write(graph32, Path.Combine(_folder, "fp32", "model.onnx"), new OnnxWriteOptions { Seed = 3 }).ModelPath;
        var path16 = OnnxModelWriter.Write(graph16, Path.Combine(_folder, "fp16", "model.onnx"), new OnnxWriteOptions { Seed = 3 }).ModelPath;
        Assert.That(new FileInfo(path16).Length, Is.LessThan(new FileInfo(path32).Length * 6 / 10));
        var inputs = SynthInputs.For(graph32);
        var expected = RunOrt(path32, inputs);
        var actual = RunEngine(path16, inputs, graph16.Outputs.Select(o => o.Name), float16: true);
        foreach (var output in graph32.Outputs)
            AssertClose($"{component} {output.Name}", expected[output.Name], actual[output.Name], 1e-2);
    }

    /// <summary>
    /// The full-size graphs at a small latent (8×8) keep their activations finite and in range, in this
    /// engine and in ONNX Runtime, and agree to 1e-3 (float32; deeper graphs than the tiny ones). Explicit:
    /// it writes gigabytes (10 GB for the SDXL UNet, whose ONNX Runtime run also needs that much RAM).
    /// </summary>
    [Explicit("writes and runs gigabytes of weights")]
    [TestCaseSource(typeof(StableDiffusionModels), nameof(StableDiffusionModels.ComponentNames))]
    public void Full_scale_graph_keeps_activations_finite(string name)
    {
        var graph = StableDiffusionModels.Build(StableDiffusionModels.ParseComponent(name), ModelScale.Full, latentSize: 8);
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        var written = OnnxModelWriter.Write(graph, Path.Combine(_folder, "model.onnx"), new OnnxWriteOptions { Seed = 5 });
        TestContext.Out.WriteLine($"{name}: wrote {written.TotalBytes / 1048576.0:F0} MiB in {stopwatch.Elapsed.TotalSeconds:F1} s (external data: {written.ExternalDataPath is not null})");
        var inputs = SynthInputs.For(graph, vocabulary: 49408);
        stopwatch.Restart();
        var actual = RunEngine(written.ModelPath, inputs, graph.Outputs.Select(o => o.Name));
        TestContext.Out.WriteLine($"  this engine: {stopwatch.Elapsed.TotalSeconds:F1} s");
        stopwatch.Restart();
        var expected = RunOrt(written.ModelPath, inputs);
        TestContext.Out.WriteLine($"  ONNX Runtime: {stopwatch.Elapsed.TotalSeconds:F1} s");
        foreach (var output in graph.Outputs)
        {
            var (maxReference, _) = AssertClose($"  {output.Name}", expected[output.Name], actual[output.Name], 1e-3);
            Assert.That(maxReference, Is.InRange(1e-2, 1e3), output.Name);
        }
    }

    [Test]
    public void External_data_holds_the_same_weights_as_an_inline_model()
    {
        var graph = StableDiffusionModels.Build(StableDiffusionComponent.Sd15TextEncoder, ModelScale.Tiny);
        var inline = OnnxModelWriter.Write(graph, Path.Combine(_folder, "inline", "model.onnx"), new OnnxWriteOptions { Seed = 7 });
        var external = OnnxModelWriter.Write(graph, Path.Combine(_folder, "external", "model.onnx"), new OnnxWriteOptions { Seed = 7, ExternalData = ExternalDataPolicy.Always });
        Assert.That(external.ExternalDataPath, Is.EqualTo(external.ModelPath + "_data"));
        // The .onnx file holds no weights, only their locations (at most 100 bytes each).
        Assert.That(new FileInfo(external.ModelPath).Length, Is.LessThan(new FileInfo(inline.ModelPath).Length - graph.ParameterBytes + 100 * graph.ParameterTensorCount));
        Assert.That(new FileInfo(external.ExternalDataPath!).Length, Is.GreaterThanOrEqualTo(graph.ParameterBytes));

        var inputs = SynthInputs.For(graph);
        var a = RunOrt(inline.ModelPath, inputs)["last_hidden_state"];
        var b = RunOrt(external.ModelPath, inputs)["last_hidden_state"];
        var engine = RunEngine(external.ModelPath, inputs, ["last_hidden_state"])["last_hidden_state"];
        Assert.That(b, Is.EqualTo(a));
        Assert.That(engine.Zip(a, (x, y) => MathF.Abs(x - y)).Max(), Is.LessThanOrEqualTo(1e-4 * a.Max(MathF.Abs)));
    }

    [Test]
    public void The_seed_decides_the_weights()
    {
        var graph = StableDiffusionModels.Build(StableDiffusionComponent.Sd15VaeDecoder, ModelScale.Tiny);
        byte[] Write(string file, long seed) => File.ReadAllBytes(OnnxModelWriter.Write(graph, Path.Combine(_folder, file), new OnnxWriteOptions { Seed = seed }).ModelPath);
        var first = Write("a.onnx", 1);
        Assert.That(Write("b.onnx", 1), Is.EqualTo(first));
        var other = Write("c.onnx", 2);
        Assert.That(other, Has.Length.EqualTo(first.Length));
        Assert.That(other.Zip(first).Count(p => p.First != p.Second), Is.GreaterThan(graph.ParameterBytes / 2));
    }

    /// <summary>The full-size SD 1.5 VAE decoder (198 MB of float32) is written through a small buffer: the writer allocates a few megabytes, not the weights.</summary>
    [Test]
    public void Writing_streams_the_weights()
    {
        var graph = StableDiffusionModels.Build(StableDiffusionComponent.Sd15VaeDecoder, ModelScale.Full);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var progress = new List<double>();
        var written = OnnxModelWriter.Write(graph, Path.Combine(_folder, "vae.onnx"), new OnnxWriteOptions { Seed = 1 }, new SynchronousProgress(progress.Add));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        TestContext.Out.WriteLine($"{written.TotalBytes} bytes written, {allocated} bytes allocated, {progress.Count} progress reports");
        Assert.That(written.TotalBytes, Is.GreaterThan(graph.ParameterBytes));
        Assert.That(allocated, Is.LessThan(16 << 20));
        Assert.That(progress, Is.Ordered);
        Assert.That(progress[^1], Is.EqualTo(1));
    }

    /// <summary>Both finite, max |error| within <paramref name="relative"/> of max |expected|; prints and returns max |expected| and its spread.</summary>
    private static (float MaxReference, float Spread) AssertClose(string what, float[] expected, float[] actual, double relative)
    {
        Assert.That(expected.All(float.IsFinite) && actual.All(float.IsFinite), $"{what} is finite");
        var maxReference = expected.Max(MathF.Abs);
        var maxError = expected.Zip(actual, (a, b) => MathF.Abs(a - b)).Max();
        var spread = expected.Max() - expected.Min();
        TestContext.Out.WriteLine($"{what}: max |ref| {maxReference:G4}, spread {spread:G4}, max |error| {maxError:G3} ({maxError / maxReference:G3} relative)");
        Assert.That(maxError, Is.LessThanOrEqualTo(relative * maxReference), what);
        return (maxReference, spread);
    }

    private sealed class SynchronousProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }

    private static Dictionary<string, float[]> RunOrt(string path, IReadOnlyDictionary<string, SynthInputs.Value> inputs)
    {
        using var session = new OrtSession(path);
        var values = inputs.Values.Select(v => v.Floats is { } f ? OrtValue.CreateTensorValueFromMemory(f, v.Shape) : OrtValue.CreateTensorValueFromMemory(v.Longs!, v.Shape)).ToArray();
        try
        {
            using var runOptions = new RunOptions();
            var names = session.OutputNames.ToArray();
            using var outputs = session.Run(runOptions, inputs.Keys.ToArray(), values, names);
            return names.Zip(outputs).ToDictionary(p => p.First, p => p.Second.GetTensorDataAsSpan<float>().ToArray());
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }

    private static Dictionary<string, float[]> RunEngine(string path, IReadOnlyDictionary<string, SynthInputs.Value> inputs, IEnumerable<string> outputs, bool float16 = false)
    {
        using var session = new EngineSession(ModelLoader.Load(path), new InferenceSessionOptions { Threads = 2 });
        var tensors = inputs.ToDictionary(p => p.Key, p =>
        {
            var shape = p.Value.Shape.Select(d => (int)d).ToArray();
            return p.Value.Floats is not { } f ? Tensor.From<long>(p.Value.Longs!, shape, session.Allocator)
                : float16 ? Tensor.From<Half>(f.Select(v => (Half)v).ToArray(), shape, session.Allocator)
                : Tensor.From<float>(f, shape, session.Allocator);
        });
        try
        {
            using var result = session.Run(tensors, extraOutputs: outputs);
            return outputs.ToDictionary(name => name, name => result.Outputs[name] is { ElementType: ElementType.Float16 } half
                ? half.Span<Half>().ToArray().Select(v => (float)v).ToArray()
                : result.Outputs[name].Span<float>().ToArray());
        }
        finally
        {
            foreach (var tensor in tensors.Values) tensor.Dispose();
        }
    }

    /// <summary>A write cancelled half-way (Ctrl-C during <c>synth</c>) leaves neither model.onnx nor model.onnx_data behind.</summary>
    [Test]
    public void A_cancelled_write_leaves_no_partial_file()
    {
        var graph = StableDiffusionModels.Build(StableDiffusionModels.ParseComponent("sd15-unet"), ModelScale.Tiny);
        using var cancellation = new CancellationTokenSource();
        var folder = Path.Combine(_folder, "cancelled");
        Assert.Catch<OperationCanceledException>(() => OnnxModelWriter.Write(graph, Path.Combine(folder, "model.onnx"),
            new OnnxWriteOptions { ExternalData = ExternalDataPolicy.Always }, new HalfWayCancel(cancellation), cancellation.Token));
        Assert.That(Directory.GetFileSystemEntries(folder), Is.Empty);
    }

    /// <summary>Cancels its token once half the weights are written.</summary>
    private sealed class HalfWayCancel(CancellationTokenSource cancellation) : IProgress<double>
    {
        public void Report(double value)
        {
            if (value >= 0.5) cancellation.Cancel();
        }
    }
}
