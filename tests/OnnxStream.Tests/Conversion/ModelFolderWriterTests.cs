using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using OnnxStream.Conversion;
using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Graph.OnnxFormat;

namespace OnnxStream.Tests.Conversion;

/// <summary><see cref="ModelFolderWriter"/> on small models built here (no ../shared needed).</summary>
internal sealed class ModelFolderWriterTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-writer-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    private static readonly float[] ConvWeight = Values(4 * 3 * 3 * 3, 1);
    private static readonly float[] ConvBias = Values(4, 2);
    private static readonly float[] FcWeight = Values(6 * 100, 3);
    private static readonly float[] FcBias = Values(6, 4);

    private static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>
    /// x → Conv (3×3, pads 1) → Identity → Reshape [1,100] → Gemm (transB, alpha 0.5) → Mul by a Constant
    /// node: an int64 2 (<paramref name="int64Two"/>) or a float 2 (what ONNX Runtime can run).
    /// </summary>
    private static OnnxTestModel Model(bool int64Two)
    {
        var two = int64Two ? OnnxTestModel.Int64s("", [2]) : OnnxTestModel.Floats("", [2f]);
        return new OnnxTestModel().Input("x", 1, 3, 5, 5).Output("y", 1, 6)
            .Initializer(OnnxTestModel.Floats("conv.weight", ConvWeight, 4, 3, 3, 3))
            .Initializer(OnnxTestModel.Floats("conv.bias", ConvBias, 4))
            .Initializer(OnnxTestModel.Int64s("shape", [1, 100], 2))
            .Initializer(OnnxTestModel.Floats("fc.weight", FcWeight, 6, 100))
            .Initializer(OnnxTestModel.Floats("fc.bias", FcBias, 6))
            .Node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], "conv/Conv", OnnxTestModel.Ints("kernel_shape", 3, 3), OnnxTestModel.Ints("pads", 1, 1, 1, 1))
            .Node("Identity", ["c"], ["c2"], "id")
            .Node("Reshape", ["c2", "shape"], ["f"], "flat")
            .Node("Gemm", ["f", "fc.weight", "fc.bias"], ["g"], "fc/Gemm", OnnxTestModel.Int("transB", 1),
                new AttributeProto { Name = "alpha", Type = AttributeProto.Types.AttributeType.Float, F = 0.5f })
            .Node("Constant", [], ["two"], "two_const", OnnxTestModel.Tensor("value", two))
            .Node("Mul", ["g", "two"], ["y"], "scale");
    }

    [Test]
    public void Without_folding_it_writes_every_node_in_the_original_format()
    {
        var onnx = Model(int64Two: true).Save(_folder);
        var output = Path.Combine(_folder, "out");
        ModelFolderWriter.Convert(onnx, output, new ModelConversionOptions { Fold = false });

        Assert.That(File.ReadAllLines(Path.Combine(output, "model.txt")), Is.EqualTo(new[]
        {
            "conv/Conv:Conv*input:x(1,3,5,5);conv_2E_weight_nchw.bin(float32:4,3,3,3);conv_2E_bias.bin(float32:4)*output:c(1,4,5,5)*kernel_shape:3,3;pads:1,1,1,1",
            "id:Identity*input:c(1,4,5,5)*output:c2(1,4,5,5)",
            "flat:Reshape*input:c2(1,4,5,5);shape.bin(int64:2)*output:f(1,100)",
            "fc/Gemm:Gemm*input:f(1,100);fc_2E_weight_transposed.bin(float32:100,6);fc_2E_bias.bin(float32:6)*output:g(1,6)*alpha:0.5",
            "scale:Mul*input:g(1,6);two.bin(float32:)*output:y(1,6)",
        }));
        Assert.That(Floats(output, "conv_2E_weight_nchw.bin"), Is.EqualTo(ConvWeight));
        var ohwi = new float[ConvWeight.Length];
        for (var o = 0; o < 4; o++)
            for (var i = 0; i < 3; i++)
                for (var p = 0; p < 9; p++)
                    ohwi[(o * 9 + p) * 3 + i] = ConvWeight[(o * 3 + i) * 9 + p];
        Assert.That(Floats(output, "conv_2E_weight_nhwc.bin"), Is.EqualTo(ohwi), "OIHW → OHWI");
        var transposed = new float[FcWeight.Length];
        for (var r = 0; r < 6; r++)
            for (var c = 0; c < 100; c++)
                transposed[c * 6 + r] = FcWeight[r * 100 + c];
        Assert.That(Floats(output, "fc_2E_weight_transposed.bin"), Is.EqualTo(transposed));
        Assert.That(Floats(output, "two.bin"), Is.EqualTo(new[] { 2f }), "Mul's int64 constant as float32");
        Assert.That(File.ReadAllBytes(Path.Combine(output, "shape.bin")), Is.EqualTo(MemoryMarshal.AsBytes<long>([1, 100]).ToArray()));
        Assert.That(Directory.GetFiles(output).Length, Is.EqualTo(8), "model.txt and 7 weight files");
    }

    [TestCase(false, false, 1e-5)]
    [TestCase(true, false, 2e-3)]
    [TestCase(false, true, 0.05)]
    public void Folded_it_runs_like_ONNX_Runtime(bool float16, bool uint8, double tolerance)
    {
        var onnx = Model(int64Two: true).Save(_folder);
        var output = Path.Combine(_folder, "out");
        ModelFolderWriter.Convert(onnx, output, new ModelConversionOptions { Float16 = float16, UInt8 = uint8 });
        var lines = File.ReadAllLines(Path.Combine(output, "model.txt"));
        Assert.That(lines.Select(l => l.Split('*')[0]), Is.EqualTo(new[] { "conv/Conv:Conv", "flat:Reshape", "fc/Gemm:Gemm", "scale:Mul" }), "the Identity is folded away");
        if (uint8)
        {
            Assert.That(lines[0], Does.Contain("conv_2E_bias.bin(float32:4)"), "Conv biases are not quantized");
            Assert.That(lines[0], Does.Match(@"conv_2E_weight_nchw\.bin\(uint8\[[0-9.e-]+,[0-9]+\]:4,3,3,3\)"));
            Assert.That(lines[3], Does.Contain("two.bin(uint8[2.0,0]:1)"), "a single value is the byte 1 times its scale");
            Assert.That(File.ReadAllBytes(Path.Combine(output, "two.bin")), Is.EqualTo(new byte[] { 1 }));
        }
        if (float16) Assert.That(lines[3], Does.Contain("two.bin(float16:)"));

        var x = Values(75, 5);
        float[] expected;
        var ortModel = Model(int64Two: false).ToModel().ToByteArray();
        using (var ort = new Microsoft.ML.OnnxRuntime.InferenceSession(ortModel))
        using (var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(x, [1, 3, 5, 5]))
        using (var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions())
        using (var outputs = ort.Run(runOptions, ["x"], [input], ["y"]))
            expected = outputs[0].GetTensorDataAsSpan<float>().ToArray();

        using var session = new InferenceSession(ModelLoader.Load(output), new InferenceSessionOptions { Threads = 1 });
        using var tensor = Tensor.From<float>(x, [1, 3, 5, 5], session.Allocator);
        using var run = session.Run(new Dictionary<string, Tensor> { ["x"] = tensor });
        var actual = run.Outputs["y"].Span<float>().ToArray();
        var maxReference = expected.Max(Math.Abs);
        Assert.That(actual.Zip(expected, (a, e) => Math.Abs(a - e)).Max(), Is.LessThanOrEqualTo(tolerance * maxReference));
    }

    /// <summary>
    /// Streaming, shown on a 4 MiB weight: the converter's native peak is two copies of it (the weight
    /// and its transpose), and its managed allocations are a small fraction of it (nothing passes
    /// through managed arrays).
    /// </summary>
    [Test]
    public void A_large_weight_is_converted_in_native_memory()
    {
        const int outputs = 1024, inputs = 1024;
        var onnx = new OnnxTestModel().Input("x", 1, inputs).Output("y", 1, outputs)
            .Initializer(OnnxTestModel.Floats("w", Values(outputs * inputs, 6), outputs, inputs))
            .Node("Gemm", ["x", "w"], ["y"], "fc", OnnxTestModel.Int("transB", 1))
            .Save(_folder);
        var output = Path.Combine(_folder, "out");
        var options = new ModelConversionOptions { UInt8 = true };
        ModelFolderWriter.Convert(onnx, output, options); // warm up
        var before = GC.GetAllocatedBytesForCurrentThread();
        var result = ModelFolderWriter.Convert(onnx, output, options);
        var managed = GC.GetAllocatedBytesForCurrentThread() - before;
        TestContext.Out.WriteLine($"weight {result.LargestWeightBytes} bytes: peak native {result.PeakNativeBytes} bytes, managed allocations {managed} bytes");
        Assert.That(result.LargestWeightBytes, Is.EqualTo(4L * outputs * inputs));
        Assert.That(result.PeakNativeBytes, Is.LessThanOrEqualTo(2.5 * result.LargestWeightBytes));
        Assert.That(managed, Is.LessThan(result.LargestWeightBytes / 16));
        Assert.That(new FileInfo(Path.Combine(output, "w_transposed.bin")).Length, Is.EqualTo(outputs * inputs));
    }

    [TestCase(0.5, "0.5")]
    [TestCase(1.0, "1.0")]
    [TestCase(-2.5, "-2.5")]
    [TestCase(1e-5, "1e-05")]
    [TestCase(1.234e-5, "1.234e-05")]
    [TestCase(0.0001, "0.0001")]
    [TestCase(1e16, "1e+16")]
    [TestCase(1234567890123456.0, "1234567890123456.0")]
    [TestCase(123456789012345678.0, "1.2345678901234568e+17")]
    [TestCase((double)1e-5f, "9.999999747378752e-06")]
    [TestCase(0.0035054587850383684, "0.0035054587850383684")]
    [TestCase(0.0, "0.0")]
    public void Floats_are_written_as_Python_writes_them(double value, string expected) =>
        Assert.That(PythonFloat.Format(value), Is.EqualTo(expected));

    [Test]
    public void The_quantization_range_skips_a_tenth_of_a_percent_at_each_end_and_includes_zero()
    {
        var allocator = new NativeAllocator();
        // 0..999: s[1] = 1 and s[998] = 998; widened to include 0.
        var positive = WeightEncoding.Range(Enumerable.Range(0, 1000).Select(i => (float)i).ToArray())!.Value;
        Assert.That(positive.Scale, Is.EqualTo(998 / 255.0));
        Assert.That(positive.ZeroPoint, Is.Zero);
        // -500..499 shuffled, with NaN and infinities (not counted): s[1] = -499, s[998] = 498.
        var values = Enumerable.Range(-500, 1000).Select(i => (float)i).OrderBy(v => (v * 7919) % 1000)
            .Concat([float.NaN, float.PositiveInfinity, float.NegativeInfinity]).ToArray();
        var mixed = WeightEncoding.Range(values)!.Value;
        Assert.That(mixed.Scale, Is.EqualTo(997 / 255.0));
        Assert.That(mixed.ZeroPoint, Is.EqualTo((int)(499 / (997 / 255.0))));
        Assert.That(mixed.TypeText, Is.EqualTo($"uint8[{PythonFloat.Format(997 / 255.0)},127]"));
        Assert.That(WeightEncoding.Range([3f, 3f])!.Value.Scale, Is.EqualTo(3 / 255.0), "3..3 widened to 0..3");
        Assert.That(WeightEncoding.Range([0f, 0f]), Is.Null, "an empty range stays float32");
        Assert.That(WeightEncoding.Range([1f, float.NaN]), Is.Null, "one finite value of two stays float32");
        Assert.That(allocator.CurrentBytes, Is.Zero);
    }

    private static float[] Floats(string folder, string file) =>
        MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(folder, file))).ToArray();

    /// <summary>A conversion cancelled half-way leaves no new folder, and an existing folder as it was (no partial model.txt or .bin).</summary>
    [Test]
    public void A_cancelled_conversion_leaves_no_partial_folder()
    {
        var onnx = Model(int64Two: false).Save(_folder);
        var fresh = Path.Combine(_folder, "fresh");
        Assert.Catch<OperationCanceledException>(() => ConvertCancellingAfterTwoNodes(onnx, fresh));
        Assert.That(Directory.Exists(fresh), Is.False);

        var existing = Path.Combine(_folder, "existing");
        ModelFolderWriter.Convert(onnx, existing, new ModelConversionOptions { Fold = false });
        var before = Directory.GetFiles(existing).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        Assert.Catch<OperationCanceledException>(() => ConvertCancellingAfterTwoNodes(onnx, existing));
        Assert.That(Directory.GetFiles(existing).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes), Is.EqualTo(before));
        Assert.That(Directory.GetFileSystemEntries(_folder).Select(Path.GetFileName), Is.EquivalentTo(new[] { Path.GetFileName(onnx), "existing" }), "no staging folder left");
    }

    private static void ConvertCancellingAfterTwoNodes(string onnx, string output)
    {
        using var cancellation = new CancellationTokenSource();
        ModelFolderWriter.Convert(onnx, output, new ModelConversionOptions(), new CancelAfter(cancellation, 2), cancellation.Token);
    }

    private sealed class CancelAfter(CancellationTokenSource cancellation, int nodes) : IProgress<ConversionProgress>
    {
        public void Report(ConversionProgress value)
        {
            if (value.NodesWritten >= nodes) cancellation.Cancel();
        }
    }
}
