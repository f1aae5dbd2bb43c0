using System.CommandLine;
using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using OnnxStream.Conversion;
using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.ModelBuilder;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Cli;

/// <summary>
/// <c>onnxstream bench-kernels</c>: GFLOP/s of the f32 fully connected operator and of both batch matmul
/// algorithms, through the same C# binding the engine uses; with <c>--conv</c>, the SD 1.5 UNet's convolutions in
/// ONNX Runtime and in this engine.
/// </summary>
internal static class BenchKernelsCommand
{
    public static Command Create()
    {
        var threads = new Option<int[]>("--threads") { Description = "Thread counts to measure.", DefaultValueFactory = _ => [1, 2], AllowMultipleArgumentsPerToken = true };
        var runs = new Option<int>("--runs") { Description = "Timed runs per case (the median is printed).", DefaultValueFactory = _ => 5 };
        var conv = new Option<bool>("--conv")
        {
            Description = "Measure the SD 1.5 UNet's typical convolutions instead: a one-node model in ONNX Runtime (float32 weights) " +
                          "and in this engine (float16 weights, streaming and RAM), and XNNPACK's convolution of the whole kernel.",
        };
        var command = new Command("bench-kernels", "Measure native kernel speed (GFLOP/s) on this machine.") { threads, runs, conv };
        command.SetAction(result =>
        {
            var runCount = result.GetValue(runs);
            if (runCount < 1) throw new ArgumentException("--runs must be at least 1.");
            if (result.GetValue(conv))
            {
                foreach (var count in result.GetValue(threads)!) BenchConvolutions(count, runCount);
                return 0;
            }
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

    // The UNet's most expensive convolution shapes at a 64×64 latent (input channels, size, output channels, kernel) and
    // how many it has of each: 3×3 ones from 320 to 2560 channels, and a 1×1 one (proj_in/proj_out).
    private static readonly (int Channels, int Size, int OutputChannels, int Kernel, int InUNet)[] ConvCases =
    [
        (320, 64, 320, 3, 7), (640, 32, 640, 3, 6), (1280, 16, 1280, 3, 7), (2560, 16, 1280, 3, 2), (1280, 8, 1280, 3, 11),
        (2560, 8, 1280, 3, 3), (1280, 16, 1280, 1, 10),
    ];

    /// <summary>
    /// Per shape, milliseconds per run (best of <paramref name="runs"/>): ONNX Runtime's Conv; this engine's Conv operation
    /// streaming (prefetch provider: reads, widens and packs its float16 weights every run) and with the Ram provider
    /// (packed once; later runs); XNNPACK's convolution of the whole float32 kernel (what the engine ran before it
    /// split convolutions into blocks) and its packing.
    /// </summary>
    private static void BenchConvolutions(int threads, int runs)
    {
        var folder = Directory.CreateTempSubdirectory("onnxstream-bench-conv");
        try
        {
            Console.WriteLine($"convolutions, {threads} thread(s), best of {runs} runs, ms; load average {LoadAverage()}");
            Console.WriteLine($"  {"shape",-24} {"GFLOP",6} {"ORT",8} {"stream",8} {"ram",8} {"ram/ORT",8} {"xnn run",8} {"xnn pack",9}");
            double ort = 0, streaming = 0, ram = 0;
            foreach (var (c, size, m, k, count) in ConvCases)
            {
                var onnx = Path.Combine(folder.FullName, $"conv{c}x{size}x{m}x{k}.onnx");
                var fp16 = Path.ChangeExtension(onnx, null);
                WriteConvModel(onnx, c, size, m, k);
                ModelFolderWriter.Convert(onnx, fp16, new ModelConversionOptions { Float16 = true });
                var x = RandomFloats(c * size * size, 5);
                var ortMs = OrtMilliseconds(onnx, x, [1, c, size, size], threads, runs);
                var streamingMs = EngineConvMilliseconds(fp16, WeightsProviderKind.Prefetch, x, [1, c, size, size], threads, runs);
                var ramMs = EngineConvMilliseconds(fp16, WeightsProviderKind.Ram, x, [1, c, size, size], threads, runs);
                var (packMs, runMs) = XnnpackWholeKernelMilliseconds(c, size, m, k, threads, runs);
                var gflop = 2.0 * m * c * k * k * size * size / 1e9;
                Console.WriteLine($"  {$"{c}x{size}x{size} -> {m} {k}x{k}",-24} {gflop,6:F2} {ortMs,8:F1} {streamingMs,8:F1} {ramMs,8:F1} {ramMs / ortMs,7:F2}x {runMs,8:F1} {packMs,9:F1}");
                ort += count * ortMs;
                streaming += count * streamingMs;
                ram += count * ramMs;
                File.Delete(onnx);
                Directory.Delete(fp16, true);
            }
            Console.WriteLine($"  these shapes as often as the UNet has them: ORT {ort:F0} ms, streaming {streaming:F0} ms ({streaming / ort:F2}x), " +
                              $"RAM {ram:F0} ms ({ram / ort:F2}x); load average {LoadAverage()}");
        }
        finally
        {
            folder.Delete(true);
        }
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    /// <summary>A float32 one-node model: x [1, c, size, size] → Conv (k×k, padding k/2, bias) → y, seeded weights.</summary>
    private static void WriteConvModel(string path, int c, int size, int m, int k)
    {
        var graph = new OnnxGraphBuilder("conv");
        var x = graph.Input("x", OnnxElementType.Float, 1, c, size, size);
        var init = WeightInit.FanIn((long)c * k * k);
        var y = graph.Node("Conv", [x, graph.Parameter("weight", [m, c, k, k], init), graph.Parameter("bias", [m], init)],
            OnnxAttribute.Ints("kernel_shape", k, k), OnnxAttribute.Ints("pads", k / 2, k / 2, k / 2, k / 2));
        graph.Output(y, "y", OnnxElementType.Float, 1, m, size, size);
        OnnxModelWriter.Write(graph, path, new OnnxWriteOptions { Seed = 1 });
    }

    private static double OrtMilliseconds(string model, float[] x, long[] shape, int threads, int runs)
    {
        using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model, options);
        using var input = OrtValue.CreateTensorValueFromMemory(x, shape);
        using var runOptions = new RunOptions();
        return Best(runs, () =>
        {
            using var outputs = session.Run(runOptions, ["x"], [input], ["y"]);
        }) * 1e3;
    }

    /// <summary>The Conv operation's time in this engine's trace, best of the runs after a first one.</summary>
    private static double EngineConvMilliseconds(string model, WeightsProviderKind provider, float[] x, int[] shape, int threads, int runs)
    {
        using var session = new Runtime.InferenceSession(ModelLoader.Load(model),
            new InferenceSessionOptions { Threads = threads, WeightsProvider = provider, Trace = true });
        using var input = Tensor.From<float>(x, shape, session.Allocator);
        var best = double.MaxValue;
        for (var i = 0; i <= runs; i++)
        {
            using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input });
            if (i > 0) best = Math.Min(best, result.Trace!.Where(t => t.OpType == "Conv").Sum(t => t.Milliseconds));
        }
        return best;
    }

    /// <summary>XNNPACK's float32 convolution of the whole OHWI kernel on NHWC data: packing, and a run.</summary>
    private static (double PackMilliseconds, double RunMilliseconds) XnnpackWholeKernelMilliseconds(int c, int size, int m, int k, int threads, int runs)
    {
        using var pool = XnnThreadPool.Create(threads);
        using var kernel = RandomBuffer(m * k * k * c, 6);
        using var input = RandomBuffer(c * size * size, 7);
        using var output = NativeBuffer<float>.Allocate(m * size * size);
        var geometry = new Convolution2dGeometry(k, k, c, m, PaddingTop: k / 2, PaddingLeft: k / 2, PaddingBottom: k / 2, PaddingRight: k / 2);
        var pack = Best(Math.Min(runs, 3), () => Convolution2dOperator.CreateFloat32(geometry, kernel.Span).Dispose());
        using var convolution = Convolution2dOperator.CreateFloat32(geometry, kernel.Span);
        var run = Best(runs, () => convolution.Run(pool, 1, size, size, input, output));
        return (pack * 1e3, run * 1e3);
    }

    private static double Best(int runs, Action action)
    {
        action(); // warm-up
        var best = double.MaxValue;
        for (var i = 0; i < runs; i++)
        {
            var start = Stopwatch.GetTimestamp();
            action();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return best;
    }

    private static float[] RandomFloats(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        foreach (ref var value in values.AsSpan()) value = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

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
