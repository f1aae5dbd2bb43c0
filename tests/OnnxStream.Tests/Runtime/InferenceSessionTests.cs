using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Runtime;

/// <summary>The scheduler and the weights providers on a small model folder with weights.</summary>
internal sealed class InferenceSessionTests
{
    private string _folder = "";

    // y = ((x + w0) * w1 + w2) * w1: four weight requests (w1 twice), three activations freed along the way.
    [SetUp]
    public void WriteModel()
    {
        _folder = Directory.CreateTempSubdirectory("onnxstream-session-").FullName;
        for (var i = 0; i < 3; i++)
            File.WriteAllBytes(Path.Combine(_folder, $"w{i}.bin"), Weights(i).SelectMany(BitConverter.GetBytes).ToArray());
        File.WriteAllText(Path.Combine(_folder, "model.txt"),
            "add0:Add*input:x(2,3);w0.bin(float32:3)*output:a(2,3)\n" +
            "mul0:Mul*input:a(2,3);w1.bin(float32:2,3)*output:b(2,3)\n" +
            "add1:Add*input:b(2,3);w2.bin(float32:1)*output:c(2,3)\n" +
            "mul1:Mul*input:c(2,3);w1.bin(float32:2,3)*output:y(2,3)\n");
    }

    [TearDown]
    public void DeleteModel() => Directory.Delete(_folder, recursive: true);

    private static float[] Weights(int i) => i switch { 0 => [1, 2, 3], 1 => [1, -1, 2, -2, 0.5f, 4], _ => [10] };

    private static float[] Expected(float[] x)
    {
        float[] w0 = Weights(0), w1 = Weights(1), w2 = Weights(2);
        return x.Select((v, i) => ((v + w0[i % 3]) * w1[i] + w2[0]) * w1[i]).ToArray();
    }

    [TestCase(WeightsProviderKind.Prefetch, 1 << 20, 32 << 20)]
    [TestCase(WeightsProviderKind.Prefetch, 0, 32 << 20)]
    [TestCase(WeightsProviderKind.Prefetch, 1 << 20, 0, TestName = "The prefetching provider with no room to hold a weight read ahead")]
    [TestCase(WeightsProviderKind.NoCache, 0, 0)]
    [TestCase(WeightsProviderKind.Ram, 0, 0)]
    public void Every_provider_gives_the_same_result_run_after_run(WeightsProviderKind provider, long budget, long hold)
    {
        float[] x = [1, 2, 3, 4, 5, 6];
        using var session = new InferenceSession(ModelTextReader.Read(_folder),
            new InferenceSessionOptions { WeightsProvider = provider, PrefetchBudgetBytes = budget, PrefetchHoldBytes = hold, Threads = 2, Trace = true });
        using var input = Tensor.From<float>(x, [2, 3], session.Allocator);
        for (var run = 0; run < 3; run++)
        {
            using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input }, extraOutputs: ["b"]);
            Assert.That(result.Outputs["y"].Span<float>().ToArray(), Is.EqualTo(Expected(x)).Within(1e-5));
            Assert.That(result.Outputs.Keys, Is.EquivalentTo(new[] { "y", "b" }));
            Assert.That(result.Trace!.Select(t => t.Node), Is.EqualTo(new[] { "add0", "mul0", "add1", "mul1" }));
            Assert.That(result.PeakBytes, Is.GreaterThan(0));
        }
        input.Dispose();
        if (provider != WeightsProviderKind.Ram)
            Assert.That(session.Allocator.LiveBlocks, Is.Zero);
    }

    [Test]
    public void OperationCompleted_sees_each_operation_as_it_runs_with_its_trace_entry()
    {
        var seen = new List<(OperationTrace Entry, long LiveNow)>();
        InferenceSession? running = null;
        // NoCache: the prefetching provider's reader thread allocates the next weights at moments of its own, between an
        // entry and its callback on a loaded machine.
        using var session = running = new InferenceSession(ModelTextReader.Read(_folder), new InferenceSessionOptions
        {
            Threads = 1, Trace = true, WeightsProvider = WeightsProviderKind.NoCache,
            OperationCompleted = entry => seen.Add((entry, running!.Allocator.CurrentBytes)),
        });
        using var input = Tensor.From<float>([1, 2, 3, 4, 5, 6], [2, 3], session.Allocator);
        using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input });
        Assert.That(seen.Select(s => s.Entry), Is.EqualTo(result.Trace), "the same entries, in order, as the run's trace");
        Assert.That(seen.Select(s => s.Entry.OpType), Is.EqualTo(new[] { "Add", "Mul", "Add", "Mul" }));
        // Called during the run, before the operation's dead inputs are freed: the bytes held then are the entry's.
        Assert.That(seen.Select(s => s.LiveNow), Is.EqualTo(seen.Select(s => s.Entry.LiveBytes)));
        // Each entry's peak covers what it left held, and the highest of them is the run's peak.
        Assert.That(seen.All(s => s.Entry.PeakBytes >= s.Entry.LiveBytes && s.Entry.PeakBytes > 0), Is.True);
        Assert.That(seen.Max(s => s.Entry.PeakBytes), Is.EqualTo(result.PeakBytes));
    }

    [Test]
    public void The_Ram_provider_keeps_packed_operators_and_its_runs_match_the_streaming_ones()
    {
        var folder = Directory.CreateTempSubdirectory("onnxstream-prepared-").FullName;
        try
        {
            void Weight(string name, int count, int seed) => File.WriteAllBytes(Path.Combine(folder, name),
                Kernels.Reference.RandomFloats(count, seed, -1, 1).SelectMany(BitConverter.GetBytes).ToArray());
            Weight("cw.bin", 3 * 2 * 3 * 3, 1);
            Weight("cb.bin", 3, 2);
            Weight("mw.bin", 4 * 5, 3);
            Weight("gw.bin", 7 * 60, 4);
            File.WriteAllText(Path.Combine(folder, "model.txt"),
                "conv:Conv*input:x(1,2,4,4);cw.bin(float32:3,2,3,3);cb.bin(float32:3)*output:c(1,3,4,4)*kernel_shape:3,3;pads:1,1,1,1\n" +
                "mm:MatMul*input:c(1,3,4,4);mw.bin(float32:4,5)*output:m(1,3,4,5)\n" +
                "fl:Flatten*input:m(1,3,4,5)*output:f(1,60)*axis:1\n" +
                "gemm:Gemm*input:f(1,60);gw.bin(float32:7,60)*output:y(1,7)*transB:1\n");
            var x = Kernels.Reference.RandomFloats(32, 5, -1, 1);
            float[] Run(InferenceSession session)
            {
                using var input = Tensor.From<float>(x, [1, 2, 4, 4], session.Allocator);
                using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input });
                return result.Outputs["y"].Span<float>().ToArray();
            }

            float[] streamed;
            // No room to hold a weight read ahead: Conv's bias is still read while the operation holds its kernel.
            using (var streaming = new InferenceSession(ModelTextReader.Read(folder), new InferenceSessionOptions { Threads = 2, PrefetchHoldBytes = 0 }))
            {
                streamed = Run(streaming);
                Assert.That(streaming.PreparedOperatorCount, Is.Zero, "only the Ram provider keeps operators");
            }
            var (xnnpackBefore, _) = global::OnnxStream.Kernels.NativeRuntime.XnnpackMemory;
            using (var ram = new InferenceSession(ModelTextReader.Read(folder), new InferenceSessionOptions { Threads = 2, WeightsProvider = WeightsProviderKind.Ram }))
            {
                for (var run = 0; run < 3; run++)
                {
                    Assert.That(Run(ram), Is.EqualTo(streamed).Within(1e-5), $"run {run + 1}");
                    Assert.That(ram.PreparedOperatorCount, Is.EqualTo(3), "Conv, MatMul and Gemm packed once");
                }
                Assert.That(global::OnnxStream.Kernels.NativeRuntime.XnnpackMemory.Current, Is.GreaterThan(xnnpackBefore), "packed weights are held");
            }
            Assert.That(global::OnnxStream.Kernels.NativeRuntime.XnnpackMemory.Current, Is.EqualTo(xnnpackBefore), "and freed with the session");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestCase("float16")]
    [TestCase("uint8")]
    public void Gather_widens_only_the_rows_it_takes_from_a_stored_table(string storage)
    {
        // A 1000×64 embedding table: 128 KiB as float16, 64 KiB as uint8, 256 KiB if it were widened whole.
        const int rows = 1000, width = 64;
        var values = Kernels.Reference.RandomFloats(rows * width, 7, -1, 1);
        var quantization = new global::OnnxStream.Kernels.Quantization(2f / 255, 128);
        var folder = Directory.CreateTempSubdirectory("onnxstream-gather-").FullName;
        try
        {
            var stored = storage == "float16"
                ? values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray()
                : values.Select(quantization.Quantize).ToArray();
            File.WriteAllBytes(Path.Combine(folder, "table.bin"), stored);
            var type = storage == "float16" ? "float16" : $"uint8[{quantization.Scale.ToString("R", System.Globalization.CultureInfo.InvariantCulture)},128]";
            File.WriteAllText(Path.Combine(folder, "model.txt"), $"gather:Gather*input:table.bin({type}:{rows},{width});ids(1,3)*output:y(1,3,{width})*axis:0\n");
            using var session = new InferenceSession(ModelLoader.Load(folder), new InferenceSessionOptions { Threads = 1, WeightsProvider = WeightsProviderKind.NoCache });
            using var ids = Tensor.From<long>([5, 999, -1], [1, 3], session.Allocator);
            using var result = session.Run(new Dictionary<string, Tensor> { ["ids"] = ids });
            var y = result.Outputs["y"];
            Assert.That(y.ElementType, Is.EqualTo(ElementType.Float32));
            float Widened(int row, int column) => storage == "float16"
                ? (float)(Half)values[row * width + column]
                : quantization.Dequantize(stored[row * width + column]);
            var expected = new[] { 5, 999, 999 }.SelectMany(row => Enumerable.Range(0, width).Select(column => Widened(row, column))).ToArray();
            Assert.That(y.Span<float>().ToArray(), Is.EqualTo(expected));
            Assert.That(result.PeakBytes, Is.LessThan(stored.Length + 4 * 1024 + 3 * width * 4), "the stored table and the rows, never the table widened");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestCase(WeightsProviderKind.Prefetch)]
    [TestCase(WeightsProviderKind.NoCache)]
    public void A_weight_file_truncated_after_loading_fails_the_run_naming_it_and_leaks_nothing(WeightsProviderKind provider)
    {
        using var session = new InferenceSession(ModelTextReader.Read(_folder), new InferenceSessionOptions { WeightsProvider = provider });
        File.WriteAllBytes(Path.Combine(_folder, "w2.bin"), []);
        using var input = Tensor.From<float>(new float[6], [2, 3], session.Allocator);
        var error = Assert.Catch(() => session.Run(new Dictionary<string, Tensor> { ["x"] = input }))!;
        Assert.That(error.Message, Does.Contain("w2.bin").And.Contain("truncated"));
        input.Dispose();
        Assert.That(session.Allocator.LiveBlocks, Is.Zero);
    }

    [TestCase(WeightsProviderKind.Prefetch)]
    [TestCase(WeightsProviderKind.NoCache)]
    public void A_large_Conv_kernel_is_read_an_output_block_at_a_time_and_never_whole(WeightsProviderKind provider)
    {
        var folder = Directory.CreateTempSubdirectory("onnxstream-sliced-").FullName;
        try
        {
            // A 96x256x3x3 float32 kernel (884,736 bytes) above an 8 KiB weight slice budget: blocks of 16 output channels.
            File.WriteAllBytes(Path.Combine(folder, "cw.bin"), Kernels.Reference.RandomFloats(96 * 256 * 9, 1, -0.1f, 0.1f).SelectMany(BitConverter.GetBytes).ToArray());
            File.WriteAllBytes(Path.Combine(folder, "cb.bin"), Kernels.Reference.RandomFloats(96, 2, -1, 1).SelectMany(BitConverter.GetBytes).ToArray());
            File.WriteAllText(Path.Combine(folder, "model.txt"),
                "conv:Conv*input:x(1,256,5,5);cw.bin(float32:96,256,3,3);cb.bin(float32:96)*output:y(1,96,5,5)*kernel_shape:3,3;pads:1,1,1,1\n");
            var x = Kernels.Reference.RandomFloats(256 * 25, 3, -1, 1);
            (float[] Values, long Peak) Run(WeightsProviderKind kind)
            {
                using var session = new InferenceSession(ModelTextReader.Read(folder),
                    new InferenceSessionOptions { Threads = 2, WeightsProvider = kind, WeightSliceBytes = 8192 });
                using var input = Tensor.From<float>(x, [1, 256, 5, 5], session.Allocator);
                using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input });
                return (result.Outputs["y"].Span<float>().ToArray(), result.PeakBytes);
            }
            var (kept, keptPeak) = Run(WeightsProviderKind.Ram);
            var (sliced, slicedPeak) = Run(provider);
            Assert.That(sliced, Is.EqualTo(kept).Within(1e-5));
            Assert.That(keptPeak, Is.GreaterThan(884_736), "the Ram provider holds the kernel");
            Assert.That(slicedPeak, Is.LessThan(884_736 / 2), "a few blocks of the kernel at a time");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // Rows of A: many (column slices of B read from the file), few (B read whole, multiplied directly); float16 storage
    // with a batch (B read whole, widened once for all items).
    [TestCase(64, Precision.Float32, true)]
    [TestCase(2, Precision.Float32, false)]
    [TestCase(64, Precision.Float16Storage, false)]
    public void A_large_MatMul_weight_is_read_a_slice_of_columns_at_a_time_where_the_product_allows(int rows, Precision precision, bool inSlices)
    {
        var folder = Directory.CreateTempSubdirectory("onnxstream-sliced-").FullName;
        try
        {
            // B: 256x384 float32 (393,216 bytes) above an 8 KiB weight slice budget.
            const int bytes = 256 * 384 * 4;
            File.WriteAllBytes(Path.Combine(folder, "b.bin"), Kernels.Reference.RandomFloats(256 * 384, 1, -0.1f, 0.1f).SelectMany(BitConverter.GetBytes).ToArray());
            File.WriteAllText(Path.Combine(folder, "model.txt"), $"mm:MatMul*input:x(2,{rows},256);b.bin(float32:256,384)*output:y(2,{rows},384)*\n");
            var x = Kernels.Reference.RandomFloats(2 * rows * 256, 3, -1, 1);
            (float[] Values, long Peak) Run(WeightsProviderKind kind)
            {
                using var session = new InferenceSession(ModelTextReader.Read(folder),
                    new InferenceSessionOptions { Threads = 2, WeightsProvider = kind, WeightSliceBytes = 8192, Precision = precision });
                using var input = Tensor.From<float>(x, [2, rows, 256], session.Allocator);
                using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input });
                return (result.Outputs["y"].Span<float>().ToArray(), result.PeakBytes);
            }
            var (kept, keptPeak) = Run(WeightsProviderKind.Ram);
            var (streamed, streamedPeak) = Run(WeightsProviderKind.Prefetch);
            Assert.That(streamed, Is.EqualTo(kept).Within(precision == Precision.Float32 ? 1e-5 : 1e-2));
            Assert.That(keptPeak, Is.GreaterThan(bytes), "the Ram provider holds B");
            var activations = 2L * rows * (256 + 384) * 4; // x and y in float32
            TestContext.Out.WriteLine($"peak tracked: kept {keptPeak}, streamed {streamedPeak} bytes (B {bytes}, x and y {activations})");
            if (inSlices) Assert.That(streamedPeak, Is.LessThan(activations + bytes / 4), "a few slices of B at a time");
            else Assert.That(streamedPeak, Is.GreaterThan(bytes), "B read whole");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Elementwise_operations_write_over_an_input_that_dies_with_them(bool keepA)
    {
        // a = σ(x), b = σ(a), c = a·b (over a, or over b when a is kept as a result), y = c + x (over c: x is the caller's).
        var folder = Directory.CreateTempSubdirectory("onnxstream-inplace-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "model.txt"),
                "s1:Sigmoid*input:x(1,64)*output:a(1,64)\n" +
                "s2:Sigmoid*input:a(1,64)*output:b(1,64)\n" +
                "m:Mul*input:a(1,64);b(1,64)*output:c(1,64)\n" +
                "add:Add*input:c(1,64);x(1,64)*output:y(1,64)\n");
            var x = Kernels.Reference.RandomFloats(64, 7, -3, 3);
            using var session = new InferenceSession(ModelTextReader.Read(folder), new InferenceSessionOptions { Threads = 2 });
            using var input = Tensor.From<float>(x, [1, 64], session.Allocator);
            using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input }, extraOutputs: keepA ? ["a"] : null);
            static float Sigmoid(float v) => 1 / (1 + MathF.Exp(-v));
            var expected = x.Select(v => Sigmoid(v) * Sigmoid(Sigmoid(v)) + v).ToArray();
            Assert.That(result.Outputs["y"].Span<float>().ToArray(), Is.EqualTo(expected).Within(1e-5));
            Assert.That(input.Span<float>().ToArray(), Is.EqualTo(x), "the caller's input is never written over");
            if (keepA) Assert.That(result.Outputs["a"].Span<float>().ToArray(), Is.EqualTo(x.Select(Sigmoid).ToArray()).Within(1e-6), "a result is never written over");
            // x, a and b at most: c and y take the memory of an input that dies with them.
            Assert.That(result.PeakBytes, Is.EqualTo(3 * 64 * sizeof(float)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void A_Reshape_of_data_that_dies_with_it_is_a_view(bool keepA)
    {
        // a = σ(x) [1,64]; r = Reshape(a, [64]) (a's memory, unless a is kept as a result); y = σ(r) over r.
        var folder = Directory.CreateTempSubdirectory("onnxstream-reshape-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(folder, "shape.bin"), BitConverter.GetBytes(64L));
            File.WriteAllText(Path.Combine(folder, "model.txt"),
                "s1:Sigmoid*input:x(1,64)*output:a(1,64)\n" +
                "rs:Reshape*input:a(1,64);shape.bin(int64:1)*output:r(64)\n" +
                "s2:Sigmoid*input:r(64)*output:y(64)\n");
            var x = Kernels.Reference.RandomFloats(64, 8, -3, 3);
            using var session = new InferenceSession(ModelTextReader.Read(folder), new InferenceSessionOptions { Threads = 2 });
            using var input = Tensor.From<float>(x, [1, 64], session.Allocator);
            using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input }, extraOutputs: keepA ? ["a"] : null);
            static float Sigmoid(float v) => 1 / (1 + MathF.Exp(-v));
            Assert.That(result.Outputs["y"].Shape, Is.EqualTo(new[] { 64 }));
            Assert.That(result.Outputs["y"].Span<float>().ToArray(), Is.EqualTo(x.Select(v => Sigmoid(Sigmoid(v))).ToArray()).Within(1e-6));
            if (keepA) Assert.That(result.Outputs["a"].Span<float>().ToArray(), Is.EqualTo(x.Select(Sigmoid).ToArray()).Within(1e-6), "a kept result is copied, not reshaped");
            Assert.That(result.PeakBytes, Is.EqualTo((keepA ? 3 : 2) * 64 * sizeof(float) + sizeof(long)), "x and a (and a's copy when a is kept), and the shape");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void A_cancelled_run_stops_between_operations_and_leaks_nothing()
    {
        using var session = new InferenceSession(ModelTextReader.Read(_folder), new InferenceSessionOptions());
        using var input = Tensor.From<float>(new float[6], [2, 3], session.Allocator);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => session.Run(new Dictionary<string, Tensor> { ["x"] = input }, cancellationToken: cancelled.Token));
        input.Dispose();
        Assert.That(session.Allocator.LiveBlocks, Is.Zero);
    }

    [Test]
    public void Inputs_are_checked_by_name_and_shape_and_escaped_names_are_accepted()
    {
        using var session = new InferenceSession(ModelTextReader.Read(_folder), new InferenceSessionOptions());
        using var wrongShape = Tensor.From<float>(new float[3], [3], session.Allocator);
        Assert.That(Assert.Throws<ArgumentException>(() => session.Run(new Dictionary<string, Tensor> { ["x"] = wrongShape }))!.Message,
            Does.Contain("'x' has shape [3]"));
        Assert.That(Assert.Throws<ArgumentException>(() => session.Run(new Dictionary<string, Tensor> { ["nope"] = wrongShape }))!.Message,
            Does.Contain("no input 'nope'"));
        Assert.That(Assert.Throws<ArgumentException>(() => session.Run(new Dictionary<string, Tensor>()))!.Message,
            Does.Contain("Missing model input(s): x"));
    }
}
