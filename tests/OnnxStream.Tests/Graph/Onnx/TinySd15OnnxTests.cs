using OnnxStream.Graph;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.Graph.OnnxFormat;

/// <summary>Loads the real (PyTorch-exported, opset 14, not simplified) tiny-sd15 models of ../shared (running them: <see cref="TinySd15Tests"/>).</summary>
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

        // The weights are 94% of this file. Loading allocates short-lived garbage that grows with the node
        // count (parsing, folding, shape inference running each operator's own shape code: about 5 MB for
        // these 615 nodes), not with the weights (LargeOnnxModelTests loads a file of large weights).
        Assert.That(summary.ParameterBytes, Is.GreaterThan(fileBytes * 9 / 10));
        Assert.That(allocated, Is.LessThan(2 * fileBytes), "bytes allocated while loading (garbage included)");
        Assert.That(retained, Is.LessThan(fileBytes / 4), "bytes the loaded graph holds");
        // The file's weights stay in the file.
        var fileWeights = graph.WeightsInUseOrder().Where(w => w.Location!.Inline is null).ToList();
        Assert.That(fileWeights.Sum(w => w.Location!.Length), Is.GreaterThan(fileBytes * 9 / 10));
        Assert.That(fileWeights, Has.All.Matches<TensorDescriptor>(w => w.Location!.Path == path && w.Location.Offset + w.Location.Length <= fileBytes));
        GC.KeepAlive(graph);
    }
}
