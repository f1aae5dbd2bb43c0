using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Models;

/// <summary>The real YOLOv8n model folder made by the original converter, against the original's output.</summary>
[Category("Models")]
internal sealed class YoloV8nTests
{
    [TestCase(WeightsProviderKind.Prefetch, 2)]
    [TestCase(WeightsProviderKind.NoCache, 1)]
    [TestCase(WeightsProviderKind.Ram, 2)]
    [TestCase(WeightsProviderKind.MemoryMapped, 2)]
    public void Reproduces_the_original_cpp_output(WeightsProviderKind provider, int threads)
    {
        var folder = SharedFixtures.Require("models/yolov8n_fp32");
        var reference = SharedFixtures.Require("models/yolov8n_fp32_ref");
        using var session = new InferenceSession(ModelTextReader.Read(folder), new InferenceSessionOptions { Threads = threads, WeightsProvider = provider });
        using var input = ReadRaw(Path.Combine(reference, "input_A.bin"), [1, 3, 640, 640], session);
        using var expected = ReadRaw(Path.Combine(reference, "0_output0.bin"), [1, 84, 8400], session);

        // Twice: the second run checks a session runs again (and the Ram provider's cached weights).
        for (var run = 0; run < 2; run++)
        {
            using var result = session.Run(new Dictionary<string, Tensor> { ["images"] = input });
            var output = result.Outputs["output0"];
            Assert.That(output.Shape, Is.EqualTo(new[] { 1, 84, 8400 }));
            var actual = output.Span<float>();
            var wanted = expected.Span<float>();
            double maxError = 0, maxScoreError = 0;
            for (var i = 0; i < wanted.Length; i++)
            {
                var error = Math.Abs(actual[i] - wanted[i]);
                maxError = Math.Max(maxError, error);
                if (i >= 4 * 8400) maxScoreError = Math.Max(maxScoreError, error);
            }
            TestContext.Out.WriteLine($"{provider}, {threads} threads, run {run + 1}: max |error| {maxError:G3} (scores {maxScoreError:G3}), " +
                                      $"{result.Elapsed.TotalMilliseconds:F0} ms, peak tracked {result.PeakBytes / 1048576.0:F1} MiB");
            // The bound: 1e-3 of the output range (0..641); class scores far tighter.
            Assert.That(maxError, Is.LessThanOrEqualTo(1e-3 * 641.3));
            Assert.That(maxScoreError, Is.LessThanOrEqualTo(1e-5));
        }
        input.Dispose();
        expected.Dispose();
        if (provider != WeightsProviderKind.Ram)
            Assert.That(session.Allocator.LiveBlocks, Is.Zero, "tensors leaked after the runs");
    }

    private static Tensor ReadRaw(string path, int[] shape, InferenceSession session)
    {
        var tensor = Tensor.Allocate(ElementType.Float32, shape, session.Allocator);
        using var file = File.OpenHandle(path);
        Assert.That(RandomAccess.Read(file, tensor.Bytes, 0), Is.EqualTo(tensor.ByteCount), path);
        return tensor;
    }
}
