using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Cli;

/// <summary>
/// <c>onnxstream bench-attention</c>: one SD 1.5 self-attention at a 64×64 latent (8 heads, Lq = Lk = 4096, d = 40)
/// and one cross-attention (Lk = 77), as diffusers exports them (Transpose of K, MatMul, Mul by the scale, Softmax,
/// MatMul), run plain, sliced in 2 and 16 and fused, in turn: median wall and processor time (the latter is steadier
/// on a shared machine), peak tracked bytes with and without Q, K, V and the output, and both as fractions of the
/// plain score matrix.
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
            Console.WriteLine($"threads {threadCount}; modes run in turn, median of {runCount} rounds after one warm-up round; peak includes Q, K, V and the output, working excludes them");
            foreach (var (name, keys) in new[] { ("self-attention", QueryLength), ("cross-attention", 77) })
                Bench(name, keys, threadCount, runCount);
            return 0;
        });
        return command;
    }

    private static readonly (AttentionMode Mode, int Slices, string Label)[] Modes =
    [
        (AttentionMode.Plain, 1, "plain"), (AttentionMode.Sliced, 2, "sliced(2)"), (AttentionMode.Sliced, 16, "sliced(16)"), (AttentionMode.Fused, 1, "fused"),
    ];

    /// <summary>
    /// Runs the modes in turn (plain, sliced(2), sliced(16), fused, plain, ...) <paramref name="runs"/> times after one
    /// warm-up round, so that every mode meets the same load on a shared machine, and prints each one's median.
    /// </summary>
    private static void Bench(string name, int keys, int threads, int runs)
    {
        var scoreBytes = (long)Heads * QueryLength * keys * sizeof(float);
        var inputOutputBytes = (long)Heads * (2 * QueryLength + 2 * keys) * HeadSize * sizeof(float);
        Console.WriteLine();
        Console.WriteLine($"{name}: {Heads} heads, Lq {QueryLength}, Lk {keys}, d {HeadSize}; plain score matrix {scoreBytes / 1048576.0:F1} MiB, Q+K+V+output {inputOutputBytes / 1048576.0:F1} MiB");
        var graph = Graph(keys);
        var sessions = Modes.Select(mode => new InferenceSession(graph, new InferenceSessionOptions
        {
            Threads = threads, WeightsProvider = WeightsProviderKind.Ram, Attention = mode.Mode, AttentionSlices = mode.Slices,
        })).ToArray();
        // The inputs come from an allocator of their own, so every session's peak counts the same: its run's bytes plus Q, K and V.
        var inputAllocator = new NativeAllocator();
        var inputs = new Dictionary<string, Tensor>
        {
            ["q"] = Random([Heads, QueryLength, HeadSize], 1, inputAllocator),
            ["k"] = Random([Heads, keys, HeadSize], 2, inputAllocator),
            ["v"] = Random([Heads, keys, HeadSize], 3, inputAllocator),
        };
        try
        {
            var times = Modes.Select(_ => new double[runs]).ToArray();
            var processorTimes = Modes.Select(_ => new double[runs]).ToArray();
            using var process = Process.GetCurrentProcess();
            var peaks = new long[Modes.Length];
            var outputs = new float[Modes.Length][];
            for (var run = -1; run < runs; run++)
                for (var mode = 0; mode < Modes.Length; mode++)
                {
                    process.Refresh();
                    var processorTime = process.TotalProcessorTime;
                    using var outcome = sessions[mode].Run(inputs);
                    process.Refresh();
                    if (run < 0) continue;
                    times[mode][run] = outcome.Elapsed.TotalMilliseconds;
                    processorTimes[mode][run] = (process.TotalProcessorTime - processorTime).TotalMilliseconds;
                    peaks[mode] = Math.Max(peaks[mode], outcome.PeakBytes + inputAllocator.CurrentBytes);
                    outputs[mode] = outcome.Outputs["out"].Span<float>().ToArray();
                }
            Console.WriteLine("| mode       |       ms |   CPU ms | peak tracked MiB | peak / plain scores | working MiB | working / plain scores | max |diff| vs plain |");
            Console.WriteLine("|------------|---------:|---------:|-----------------:|--------------------:|------------:|-----------------------:|--------------------:|");
            for (var mode = 0; mode < Modes.Length; mode++)
            {
                Array.Sort(times[mode]);
                Array.Sort(processorTimes[mode]);
                var working = peaks[mode] - inputOutputBytes;
                var difference = outputs[0].Zip(outputs[mode], (a, b) => Math.Abs(a - b)).Max();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {Modes[mode].Label,-10} | {times[mode][runs / 2],8:F1} | {processorTimes[mode][runs / 2],8:F1} | {peaks[mode] / 1048576.0,16:F1} | {(double)peaks[mode] / scoreBytes,19:F4} | {working / 1048576.0,11:F2} | {(double)working / scoreBytes,22:F4} | {difference,19:G3} |"));
            }
        }
        finally
        {
            foreach (var tensor in inputs.Values) tensor.Dispose();
            foreach (var session in sessions) session.Dispose();
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

    private static Tensor Random(int[] shape, int seed, NativeAllocator allocator)
    {
        var tensor = Tensor.Allocate(ElementType.Float32, shape, allocator);
        var random = new Random(seed);
        foreach (ref var value in tensor.Span<float>()) value = (float)(random.NextDouble() * 2 - 1);
        return tensor;
    }
}
