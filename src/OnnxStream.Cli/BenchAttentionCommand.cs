using System.CommandLine;
using System.Globalization;
using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Cli;

/// <summary>
/// <c>onnxstream bench-attention</c>: one SD 1.5 self-attention at a 64×64 latent (8 heads, Lq = Lk = 4096, d = 40)
/// and one cross-attention (Lk = 77), as diffusers exports them (Transpose of K, MatMul, Mul by the scale, Softmax,
/// MatMul), run plain, sliced in 2 and 16 and fused: median time, peak tracked bytes, and that peak as a
/// fraction of the plain score matrix.
/// </summary>
internal static class BenchAttentionCommand
{
    private const int Heads = 8;
    private const int HeadSize = 40;
    private const int QueryLength = 64 * 64;

    public static Command Create()
    {
        var threads = new Option<int>("--threads") { Description = "Threads for the kernels.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var runs = new Option<int>("--runs") { Description = "Timed runs per mode (the median is printed).", DefaultValueFactory = _ => 3 };
        var command = new Command("bench-attention", "Measure plain, sliced and fused attention (time and peak memory).") { threads, runs };
        command.SetAction(result =>
        {
            var threadCount = result.GetValue(threads);
            var runCount = result.GetValue(runs);
            if (threadCount < 1) throw new ArgumentException("--threads must be at least 1.");
            if (runCount < 1) throw new ArgumentException("--runs must be at least 1.");
            Console.WriteLine($"threads {threadCount}, median of {runCount} runs after one warm-up run; peak includes Q, K, V and the output");
            foreach (var (name, keys) in new[] { ("self-attention", QueryLength), ("cross-attention", 77) })
                Bench(name, keys, threadCount, runCount);
            return 0;
        });
        return command;
    }

    private static void Bench(string name, int keys, int threads, int runs)
    {
        var scoreBytes = (long)Heads * QueryLength * keys * sizeof(float);
        Console.WriteLine();
        Console.WriteLine($"{name}: {Heads} heads, Lq {QueryLength}, Lk {keys}, d {HeadSize}; plain score matrix {scoreBytes / 1048576.0:F1} MiB");
        Console.WriteLine($"| mode       |       ms | peak tracked MiB | peak / plain scores | max |diff| vs plain |");
        Console.WriteLine($"|------------|---------:|-----------------:|--------------------:|--------------------:|");
        var graph = Graph(keys);
        float[]? plain = null;
        foreach (var (mode, slices, label) in new[]
                 {
                     (AttentionMode.Plain, 0, "plain"), (AttentionMode.Sliced, 2, "sliced(2)"), (AttentionMode.Sliced, 16, "sliced(16)"),
                     (AttentionMode.Fused, 0, "fused"),
                 })
        {
            using var session = new InferenceSession(graph, new InferenceSessionOptions
            {
                Threads = threads, WeightsProvider = WeightsProviderKind.Ram, Attention = mode, AttentionSlices = Math.Max(1, slices),
            });
            var inputs = new Dictionary<string, Tensor>
            {
                ["q"] = Random([Heads, QueryLength, HeadSize], 1, session),
                ["k"] = Random([Heads, keys, HeadSize], 2, session),
                ["v"] = Random([Heads, keys, HeadSize], 3, session),
            };
            try
            {
                var times = new double[runs];
                long peak = 0;
                float[] output = [];
                for (var run = -1; run < runs; run++)
                {
                    using var outcome = session.Run(inputs);
                    if (run < 0) continue;
                    times[run] = outcome.Elapsed.TotalMilliseconds;
                    peak = Math.Max(peak, outcome.PeakBytes);
                    output = outcome.Outputs["out"].Span<float>().ToArray();
                }
                Array.Sort(times);
                plain ??= output;
                var difference = plain.Zip(output, (a, b) => Math.Abs(a - b)).Max();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {label,-10} | {times[runs / 2],8:F1} | {peak / 1048576.0,16:F1} | {(double)peak / scoreBytes,19:F4} | {difference,19:G3} |"));
            }
            finally
            {
                foreach (var tensor in inputs.Values) tensor.Dispose();
            }
        }
    }

    /// <summary>q [8, 4096, 40], k and v [8, Lk, 40] → out: diffusers' attention (K transposed by a node, scale by a Mul).</summary>
    private static ModelGraph Graph(int keys)
    {
        TensorDescriptor Activation(string name, params int[] shape) => new(name, shape);
        var q = Activation("q", Heads, QueryLength, HeadSize);
        var k = Activation("k", Heads, keys, HeadSize);
        var v = Activation("v", Heads, keys, HeadSize);
        var kt = Activation("kt", Heads, HeadSize, keys);
        var scores = Activation("scores", Heads, QueryLength, keys);
        var scaled = Activation("scaled", Heads, QueryLength, keys);
        var probabilities = Activation("probabilities", Heads, QueryLength, keys);
        var output = Activation("out", Heads, QueryLength, HeadSize);
        var scaleBytes = BitConverter.GetBytes(1f / MathF.Sqrt(HeadSize));
        var scale = new TensorDescriptor("scale", [], ElementType.Float32, Location: new WeightLocation("bench", 0, scaleBytes.Length, scaleBytes));
        GraphNode Node(string name, string op, TensorDescriptor[] inputs, TensorDescriptor result, Dictionary<string, string>? attributes = null) =>
            new(name, op, inputs, [result], new NodeAttributes(attributes ?? []), "bench");
        GraphNode[] nodes =
        [
            Node("transpose", "Transpose", [k], kt, new() { ["perm"] = "0,2,1" }),
            Node("matmul", "MatMul", [q, kt], scores),
            Node("mul", "Mul", [scores, scale], scaled),
            Node("softmax", "Softmax", [scaled], probabilities, new() { ["axis"] = "-1" }),
            Node("matmul_1", "MatMul", [probabilities, v], output),
        ];
        return new ModelGraph("bench-attention", nodes, [q, k, v], [output]);
    }

    private static Tensor Random(int[] shape, int seed, InferenceSession session)
    {
        var tensor = Tensor.Allocate(ElementType.Float32, shape, session.Allocator);
        var random = new Random(seed);
        foreach (ref var value in tensor.Span<float>()) value = (float)(random.NextDouble() * 2 - 1);
        return tensor;
    }
}
