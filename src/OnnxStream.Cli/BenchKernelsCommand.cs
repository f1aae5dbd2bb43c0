using System.CommandLine;
using System.Diagnostics;
using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Cli;

/// <summary>
/// <c>onnxstream bench-kernels</c>: GFLOP/s of the f32 fully connected operator and of both batch matmul
/// algorithms, through the same C# binding the engine uses.
/// </summary>
internal static class BenchKernelsCommand
{
    public static Command Create()
    {
        var threads = new Option<int[]>("--threads") { Description = "Thread counts to measure.", DefaultValueFactory = _ => [1, 2], AllowMultipleArgumentsPerToken = true };
        var runs = new Option<int>("--runs") { Description = "Timed runs per case (the median is printed).", DefaultValueFactory = _ => 5 };
        var command = new Command("bench-kernels", "Measure native kernel speed (GFLOP/s) on this machine.") { threads, runs };
        command.SetAction(result =>
        {
            var runCount = result.GetValue(runs);
            if (runCount < 1) throw new ArgumentException("--runs must be at least 1.");
            foreach (var count in result.GetValue(threads)!)
            {
                using var pool = XnnThreadPool.Create(count);
                Console.WriteLine($"threads {count}");
                BenchFullyConnected(pool, 1024, 1024, 1024, runCount);
                foreach (var (batch, m, k, n, transpose) in MatMulCases)
                    foreach (var algorithm in new[] { MatMulAlgorithm.PackedGemm, MatMulAlgorithm.Direct })
                        BenchBatchMatMul(pool, new BatchMatMulShape(batch, m, k, n, transpose), algorithm, runCount);
            }
            return 0;
        });
        return command;
    }

    // Attention-shaped products of SD 1.5 (8 heads, d = 40): Q·Kᵀ and P·V at a 32×32 latent, cross-attention
    // with 77 tokens, and few-row products where packing B cannot pay off.
    private static readonly (int Batch, int M, int K, int N, bool TransposeB)[] MatMulCases =
    [
        (8, 1024, 40, 1024, true), (8, 1024, 1024, 40, false), (8, 1024, 40, 77, true),
        (8, 1, 40, 1024, true), (8, 4, 1024, 40, false), (8, 16, 1024, 40, false), (8, 64, 1024, 40, false),
    ];

    private static void BenchFullyConnected(XnnThreadPool pool, int m, int k, int n, int runs)
    {
        using var weights = RandomBuffer(k * n, 1);
        using var op = FullyConnectedOperator.CreateFloat32(k, n, weights.Span);
        using var input = RandomBuffer(m * k, 2);
        using var output = NativeBuffer<float>.Allocate(m * n);
        var seconds = Median(runs, () => op.Run(pool, m, input, output));
        Console.WriteLine($"  fully connected f32 {m}x{k}x{n}: {2.0 * m * k * n / seconds / 1e9,8:F1} GFLOP/s ({seconds * 1e3:F2} ms)");
    }

    private static void BenchBatchMatMul(XnnThreadPool pool, BatchMatMulShape shape, MatMulAlgorithm algorithm, int runs)
    {
        using var a = RandomBuffer(shape.Batch * shape.M * shape.K, 3);
        using var b = RandomBuffer(shape.Batch * shape.K * shape.N, 4);
        using var c = NativeBuffer<float>.Allocate(shape.Batch * shape.M * shape.N);
        var seconds = Median(runs, () => BatchMatMulKernel.Run(pool, shape, a, b, c, algorithm));
        var flops = 2.0 * shape.Batch * shape.M * shape.K * shape.N;
        Console.WriteLine($"  batch matmul {shape.Batch}x[{shape.M}x{shape.K}]x[{shape.K}x{shape.N}]{(shape.TransposeB ? "ᵀ" : " ")} {algorithm,-10}: {flops / seconds / 1e9,8:F1} GFLOP/s ({seconds * 1e3:F3} ms)");
    }

    private static double Median(int runs, Action action)
    {
        action(); // warm-up: first-touch of pages, code paths
        var times = new double[runs];
        for (var i = 0; i < runs; i++)
        {
            var start = Stopwatch.GetTimestamp();
            action();
            times[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        Array.Sort(times);
        return times[runs / 2];
    }

    private static NativeBuffer<float> RandomBuffer(int count, int seed)
    {
        var random = new Random(seed);
        var buffer = NativeBuffer<float>.Allocate(count);
        foreach (ref var value in buffer.Span) value = (float)(random.NextDouble() * 2 - 1);
        return buffer;
    }
}
