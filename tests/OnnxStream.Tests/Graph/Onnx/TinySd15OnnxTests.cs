using System.Text.Json;
using OnnxStream.Graph;
using OnnxStream.Operators;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.Graph.OnnxFormat;

/// <summary>Loads the real (PyTorch-exported, opset 14, not simplified) tiny-sd15 models of ../shared.</summary>
[Category("Models")]
internal sealed class TinySd15OnnxTests
{
    private static readonly string[] Components = ["text_encoder", "unet", "vae_decoder"];

    [TestCaseSource(nameof(Components))]
    public void Loads_the_model_and_prints_the_operators_that_remain(string component)
    {
        var path = SharedFixtures.Require($"models/tiny-sd15/{component}/model.onnx");
        ModelLoader.Load(path); // warm up: JIT, protobuf and operator registry statics

        var retainedBefore = GC.GetTotalMemory(forceFullCollection: true);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var graph = ModelLoader.Load(path);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        var retained = GC.GetTotalMemory(forceFullCollection: true) - retainedBefore;

        var fileBytes = new FileInfo(path).Length;
        var summary = ModelSummary.Of(graph);
        var weights = graph.WeightsInUseOrder();
        TestContext.Out.WriteLine($"{component}: {graph.Nodes.Count} nodes, {weights.Count} weights ({weights.Count(w => w.Location!.Inline is not null)} inline), " +
                                  $"{summary.ParameterCount} parameters ({summary.ParameterBytes / 1024} KiB); loading the {fileBytes / 1024} KiB file allocated {allocated / 1024} KiB, the graph holds {retained / 1024} KiB");
        TestContext.Out.WriteLine($"  inputs: {string.Join(", ", graph.Inputs)}; outputs: {string.Join(", ", graph.Outputs)}");
        foreach (var (opType, count) in summary.OperatorCounts)
            TestContext.Out.WriteLine($"  {opType,-24}{count,5}");

        Assert.That(graph.Nodes, Has.None.Matches<GraphNode>(n => n.OpType is "Constant" or "Identity" or "Dropout"));
        Assert.That(graph.Nodes.Count, Is.InRange(100, 1000));
        Assert.That(weights.Count, Is.GreaterThan(30));
        Assert.That(graph.Inputs, Is.Not.Empty);
        Assert.That(graph.Outputs, Is.Not.Empty);
        Assert.That(weights.Where(w => w.Location!.Inline is not null), Has.All.Matches<TensorDescriptor>(w => w.Location!.Length <= WeightLocation.MaxInlineBytes));
        GC.KeepAlive(graph);
    }

    [Test]
    public void The_unet_loads_without_reading_its_weights()
    {
        var path = SharedFixtures.Require("models/tiny-sd15/unet/model.onnx");
        ModelLoader.Load(path); // warm up: JIT, protobuf and operator registry statics
        var retainedBefore = GC.GetTotalMemory(forceFullCollection: true);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var graph = ModelLoader.Load(path);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        var retained = GC.GetTotalMemory(forceFullCollection: true) - retainedBefore;
        var fileBytes = new FileInfo(path).Length;
        var summary = ModelSummary.Of(graph);
        TestContext.Out.WriteLine($"unet: {fileBytes} bytes, {summary.ParameterBytes} of weights; {allocated} allocated, {retained} retained");

        // The weights are 94% of this file; reading them would allocate more than the file holds.
        Assert.That(summary.ParameterBytes, Is.GreaterThan(fileBytes * 9 / 10));
        Assert.That(allocated, Is.LessThan(fileBytes), "bytes allocated while loading (garbage included)");
        Assert.That(retained, Is.LessThan(fileBytes / 4), "bytes the loaded graph holds");
        // The file's weights stay in the file.
        var fileWeights = graph.WeightsInUseOrder().Where(w => w.Location!.Inline is null).ToList();
        Assert.That(fileWeights.Sum(w => w.Location!.Length), Is.GreaterThan(fileBytes * 9 / 10));
        Assert.That(fileWeights, Has.All.Matches<TensorDescriptor>(w => w.Location!.Path == path && w.Location.Offset + w.Location.Length <= fileBytes));
        GC.KeepAlive(graph);
    }

    [TestCaseSource(nameof(Components))]
    public void Runs_from_the_onnx_file_like_torch_once_every_operator_exists(string component)
    {
        var path = SharedFixtures.Require($"models/tiny-sd15/{component}/model.onnx");
        var reference = Path.Combine(Path.GetDirectoryName(path)!, "ref");
        var graph = ModelLoader.Load(path);
        var missing = graph.Nodes.Select(n => n.OpType).Distinct().Where(op => !OperatorRegistry.Default.TryGet(op, out _)).Order().ToList();
        if (missing.Count > 0) Assert.Ignore($"{component}: operators not implemented yet: {string.Join(", ", missing)}");

        using var meta = JsonDocument.Parse(File.ReadAllText(Path.Combine(reference, "meta.json")));
        using var session = new InferenceSession(graph, new InferenceSessionOptions { Threads = 2 });
        var inputs = new Dictionary<string, Tensor>();
        try
        {
            foreach (var input in meta.RootElement.GetProperty("inputs").EnumerateArray())
                inputs[input.GetProperty("name").GetString()!] = ReadRaw(reference, input, session);
            using var result = session.Run(inputs);
            foreach (var output in meta.RootElement.GetProperty("outputs").EnumerateArray())
            {
                using var expected = ReadRaw(reference, output, session);
                var actual = result.Outputs[output.GetProperty("name").GetString()!];
                Assert.That(actual.Shape, Is.EqualTo(expected.Shape));
                var a = actual.Span<float>();
                var e = expected.Span<float>();
                double maxError = 0, maxReference = 0;
                for (var i = 0; i < e.Length; i++)
                {
                    maxError = Math.Max(maxError, Math.Abs(a[i] - e[i]));
                    maxReference = Math.Max(maxReference, Math.Abs(e[i]));
                }
                TestContext.Out.WriteLine($"{component} {output.GetProperty("name")}: max |error| {maxError:G3} of max |ref| {maxReference:G3}");
                Assert.That(maxError, Is.LessThanOrEqualTo(1e-3 * maxReference));
            }
        }
        finally
        {
            foreach (var tensor in inputs.Values) tensor.Dispose();
        }
    }

    private static Tensor ReadRaw(string folder, JsonElement entry, InferenceSession session)
    {
        var type = entry.GetProperty("dtype").GetString() switch
        {
            "float32" => ElementType.Float32,
            "int64" => ElementType.Int64,
            var other => throw new NotSupportedException($"reference dtype {other}"),
        };
        var shape = entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
        var tensor = Tensor.Allocate(type, shape, session.Allocator);
        using var file = File.OpenHandle(Path.Combine(folder, entry.GetProperty("file").GetString()!));
        Assert.That(RandomAccess.Read(file, tensor.Bytes, 0), Is.EqualTo(tensor.ByteCount));
        return tensor;
    }
}
