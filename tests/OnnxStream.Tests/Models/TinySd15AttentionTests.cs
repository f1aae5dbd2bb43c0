using System.Text.Json;
using OnnxStream.Graph;
using OnnxStream.Graph.Passes;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Models;

/// <summary>
/// Attention slicing and fused attention on the tiny-sd15 UNet and text encoder (ONNX and model folder): every
/// attention subgraph is replaced, the outputs equal the plain run's to 1e-5 of its max |value|, and the UNet's
/// peak of tracked bytes (its largest tensors are the 8×1024×1024 attention scores) drops.
/// </summary>
[Category("Models")]
internal sealed class TinySd15AttentionTests
{
    private static IEnumerable<TestCaseData> Models()
    {
        // The UNet has 8 attentions (4 self, 4 cross); the text encoder one per layer, with CLIP's causal mask.
        yield return new TestCaseData("unet", "unet/model.onnx", 8).SetArgDisplayNames("unet/model.onnx");
        yield return new TestCaseData("unet", "unet_fp32", 8).SetArgDisplayNames("unet_fp32");
        yield return new TestCaseData("text_encoder", "text_encoder/model.onnx", 2).SetArgDisplayNames("text_encoder/model.onnx");
        yield return new TestCaseData("text_encoder", "text_encoder_fp32", 2).SetArgDisplayNames("text_encoder_fp32");
    }

    [TestCaseSource(nameof(Models))]
    public void Sliced_and_fused_attention_equal_plain(string component, string model, int attentions)
    {
        var path = SharedFixtures.Require($"models/tiny-sd15/{model}");
        var reference = SharedFixtures.Require($"models/tiny-sd15/{component}/ref");
        var graph = ModelLoader.Load(path);
        Assert.That(graph.Nodes.Count(n => n.OpType == "Softmax"), Is.EqualTo(attentions), "Softmax nodes of the model");

        var (plainOutputs, plainPeak, plainTime) = Run(graph, reference, model, new InferenceSessionOptions { Threads = 2 });
        TestContext.Out.WriteLine($"{model} plain: peak tracked {plainPeak} bytes ({plainPeak / 1048576.0:F2} MiB); {plainTime.TotalMilliseconds:F0} ms");
        foreach (var (mode, slices) in new[] { (AttentionMode.Sliced, 2), (AttentionMode.Sliced, 16), (AttentionMode.Fused, 2) })
        {
            var what = mode == AttentionMode.Sliced ? $"sliced({slices})" : "fused";
            var options = new InferenceSessionOptions { Threads = 2, Attention = mode, AttentionSlices = slices };
            var opType = mode == AttentionMode.Sliced ? AttentionFusion.SlicedOpType : AttentionFusion.FusedOpType;
            var (outputs, peak, elapsed) = Run(graph, reference, model, options, run =>
            {
                Assert.That(run.Nodes.Count(n => n.OpType == opType), Is.EqualTo(attentions), $"{opType} nodes");
                Assert.That(run.Nodes.Count(n => n.OpType == "Softmax"), Is.Zero, "Softmax nodes left");
            });
            foreach (var (name, expected) in plainOutputs)
            {
                var (maxError, maxPlain) = TinySd15Tests.Compare(outputs[name], expected);
                TestContext.Out.WriteLine($"{model} {what} {name}: max |error| {maxError:G3} ({maxError / maxPlain:G3} of max |plain|); " +
                                          $"peak tracked {peak} bytes ({peak / 1048576.0:F2} MiB); {elapsed.TotalMilliseconds:F0} ms");
                Assert.That(maxError, Is.LessThanOrEqualTo(1e-5 * maxPlain), $"{what} {name}");
            }
            if (component == "unet") Assert.That(peak, Is.LessThan(plainPeak), $"{what}: peak tracked bytes below plain's");
            else Assert.That(peak, Is.LessThanOrEqualTo(plainPeak), $"{what}: peak tracked bytes");
        }
    }

    /// <summary>
    /// Runs the model on its reference inputs <paramref name="runs"/> times (checking the graph as the session runs it);
    /// returns the last run's outputs (the reference's names) and the highest peak.
    /// </summary>
    internal static (Dictionary<string, float[]> Outputs, long Peak, TimeSpan Elapsed) Run(ModelGraph graph, string reference, string model,
        InferenceSessionOptions options, Action<ModelGraph>? checkGraph = null, int runs = 1)
    {
        using var meta = JsonDocument.Parse(File.ReadAllText(Path.Combine(reference, "meta.json")));
        var renamed = new Dictionary<string, string>();
        if (meta.RootElement.TryGetProperty("onnxstream_folders", out var folders) && folders.TryGetProperty(model, out var folder) &&
            folder.TryGetProperty("renamed_io", out var map))
            foreach (var entry in map.EnumerateObject()) renamed[entry.Name] = entry.Value.GetString()!;
        using var session = new InferenceSession(graph, options);
        checkGraph?.Invoke(session.Graph);
        var inputs = new Dictionary<string, Tensor>();
        try
        {
            foreach (var input in meta.RootElement.GetProperty("inputs").EnumerateArray())
            {
                var name = input.GetProperty("name").GetString()!;
                inputs[renamed.GetValueOrDefault(name, name)] = TinySd15Tests.ReadRaw(reference, input, session);
            }
            var names = meta.RootElement.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()!).ToList();
            long peak = 0;
            for (var run = 1; ; run++)
            {
                using var result = session.Run(inputs, extraOutputs: names);
                peak = Math.Max(peak, result.PeakBytes);
                if (run == runs) return (names.ToDictionary(n => n, n => result.Outputs[n].Span<float>().ToArray()), peak, result.Elapsed);
            }
        }
        finally
        {
            foreach (var tensor in inputs.Values) tensor.Dispose();
        }
    }
}
