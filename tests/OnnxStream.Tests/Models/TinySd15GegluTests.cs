using OnnxStream.Graph;
using OnnxStream.Graph.Passes;
using OnnxStream.Runtime;

namespace OnnxStream.Tests.Models;

/// <summary>
/// The fused GEGLU projection on the tiny-sd15 UNet (ONNX, float32 and float16 folders): each of its feed-forward
/// blocks' GEGLU subgraphs is replaced, and the outputs equal the unfused graph's to 1e-5 of its max |value|, whether
/// the projection is packed whole and kept (Ram), packed per run, or packed in slices of a few columns.
/// </summary>
[Category("Models")]
internal sealed class TinySd15GegluTests
{
    [TestCase("unet/model.onnx")]
    [TestCase("unet_fp32")]
    [TestCase("unet_fp16")]
    public void The_fused_GEGLU_equals_the_exported_subgraph(string model)
    {
        var graph = ModelLoader.Load(SharedFixtures.Require($"models/tiny-sd15/{model}"));
        var reference = SharedFixtures.Require("models/tiny-sd15/unet/ref");
        var blocks = graph.Nodes.Count(n => n.OpType == "Erf");
        Assert.That(blocks, Is.EqualTo(4), "the tiny UNet's feed-forward blocks");
        var (unfused, _, _) = TinySd15AttentionTests.Run(graph, reference, model, new InferenceSessionOptions { Threads = 2, FuseGeglu = false },
            run => Assert.That(run.Nodes.Count(n => n.OpType == GegluFusion.OpType), Is.Zero));
        void Fused(ModelGraph run)
        {
            Assert.That(run.Nodes.Count(n => n.OpType == GegluFusion.OpType), Is.EqualTo(blocks), $"{GegluFusion.OpType} nodes");
            Assert.That(run.Nodes.Count(n => n.OpType == "Erf"), Is.Zero, "Erf nodes left");
        }
        foreach (var (what, options, runs) in new[]
                 {
                     ("streaming", new InferenceSessionOptions { Threads = 2 }, 1),
                     ("streaming in slices of a few columns", new InferenceSessionOptions { Threads = 2, WeightSliceBytes = 16384 }, 1),
                     ("kept (Ram)", new InferenceSessionOptions { Threads = 2, WeightsProvider = WeightsProviderKind.Ram }, 2),
                 })
        {
            var (outputs, peak, _) = TinySd15AttentionTests.Run(graph, reference, model, options, Fused, runs);
            foreach (var (name, expected) in unfused)
            {
                var (maxError, maxUnfused) = TinySd15Tests.Compare(outputs[name], expected);
                TestContext.Out.WriteLine($"{model} {what} {name}: max |error| {maxError:G3} ({maxError / maxUnfused:G3} of max |unfused|); peak tracked {peak} bytes");
                Assert.That(maxError, Is.LessThanOrEqualTo(1e-5 * maxUnfused), $"{what} {name}");
            }
        }
    }
}
