using System.Text.Json;
using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Models;

/// <summary>
/// Every form of ../shared/models/tiny-sd15 (the unsimplified PyTorch ONNX exports, and the original
/// converter's fp32, fp16 and qu8 model folders) against the torch reference outputs stored with it.
/// The bound is on max |error| relative to max |reference| of each output:
/// <list type="bullet">
/// <item>fp32 (ONNX and folders): 1e-4, the issue's bound; the same float32 weights, only summation order differs.</item>
/// <item>fp16 folders: 1e-2. The weights are rounded to float16 (relative error up to 2⁻¹¹ ≈ 4.9e-4 each) and
/// the errors of ~20 layers compound; computation itself is float32. Measured 5.0e-3 (UNet) and 1.9e-3 (VAE).</item>
/// <item>qu8 folder: 0.25. The converter quantizes each weight tensor to uint8 over its 0.1%..99.9% percentile
/// range with a truncated zero point (a dequantized weight is up to one step off, half a step low on
/// average, and outliers are clipped), and this random-weight decoder has no trained robustness to it:
/// measured 0.175. The engine is not the cause: <see cref="The_qu8_decoder_equals_ONNX_Runtime_on_the_same_dequantized_weights"/>
/// matches ONNX Runtime given the same dequantized weights to 3.4e-6.</item>
/// </list>
/// </summary>
[Category("Models")]
internal sealed class TinySd15Tests
{
    /// <summary>A runnable form: the component (whose ref/ holds the reference) and the model path under it.</summary>
    internal sealed record Form(string Component, string Model, double Tolerance)
    {
        public bool IsFolder => !Model.EndsWith(".onnx", StringComparison.Ordinal);

        public override string ToString() => Model;
    }

    internal static readonly Form[] Forms =
    [
        new("text_encoder", "text_encoder/model.onnx", 1e-4),
        new("text_encoder", "text_encoder_fp32", 1e-4),
        new("unet", "unet/model.onnx", 1e-4),
        new("unet", "unet_fp32", 1e-4),
        new("unet", "unet_fp16", 1e-2),
        new("vae_decoder", "vae_decoder/model.onnx", 1e-4),
        new("vae_decoder", "vae_decoder_fp32", 1e-4),
        new("vae_decoder", "vae_decoder_fp16", 1e-2),
        new("vae_decoder", "vae_decoder_qu8", 0.25),
    ];

    private static IEnumerable<TestCaseData> Runs()
    {
        foreach (var form in Forms)
        {
            foreach (var threads in new[] { 1, 2 })
                yield return new TestCaseData(form, WeightsProviderKind.Prefetch, threads).SetArgDisplayNames(form.Model, "Prefetch", $"{threads} threads");
            foreach (var provider in new[] { WeightsProviderKind.NoCache, WeightsProviderKind.Ram, WeightsProviderKind.MemoryMapped })
                yield return new TestCaseData(form, provider, 2).SetArgDisplayNames(form.Model, provider.ToString(), "2 threads");
        }
    }

    [TestCaseSource(nameof(Runs))]
    public void Matches_the_torch_reference(Form form, WeightsProviderKind provider, int threads)
    {
        using var session = RunAgainstReference(form, new InferenceSessionOptions { Threads = threads, WeightsProvider = provider }, _ => form.Tolerance, out _);
        if (provider != WeightsProviderKind.Ram)
            Assert.That(session.Allocator.LiveBlocks, Is.Zero, "tensors leaked after the runs");
        else if (form.Component != "text_encoder")
            Assert.That(session.PreparedOperatorCount, Is.GreaterThan(10), "packed convolutions and matmuls kept");
    }

    private static IEnumerable<TestCaseData> Float16Runs() =>
        from form in Forms.Where(f => f.Model is "unet/model.onnx" or "unet_fp16" or "vae_decoder/model.onnx" or "vae_decoder_fp16" or "text_encoder/model.onnx")
        from precision in new[] { Precision.Float16Storage, Precision.Float16Arithmetic }
        select new TestCaseData(form, precision).SetArgDisplayNames(form.Model, precision.ToString());

    /// <summary>
    /// float16 activations: within 2e-2 of max |ref| with float32 arithmetic, 5e-2 with float16 kernels. Every
    /// activation is rounded to float16 (relative error 2⁻¹¹ ≈ 4.9e-4 each) through ~40 (VAE) to ~60 (UNet)
    /// layers, and float16 kernels also round their products and sums; measured (max over outputs): storage
    /// UNet 5e-3, VAE 4.0e-3; kernels UNet and VAE up to 2.2e-2. Activations take half the bytes, and the
    /// operations that meet the largest tensors (softmax, matmul, convolution) widen blocks, not whole tensors:
    /// measured peaks are 51% (UNet) and 77% (VAE) of float32's with float32 arithmetic, 51% and 65% with
    /// float16 kernels; the bounds are 80% and 70%.
    /// </summary>
    [TestCaseSource(nameof(Float16Runs))]
    public void Float16_precisions_match_the_torch_reference(Form form, Precision precision)
    {
        var options = new InferenceSessionOptions { Threads = 2, WeightsProvider = WeightsProviderKind.NoCache, Precision = precision };
        using var session = RunAgainstReference(form, options, session16 => session16 == Precision.Float16Arithmetic ? 5e-2 : 2e-2, out var peak);
        Assert.That(session.Allocator.LiveBlocks, Is.Zero, "tensors leaked after the runs");
        var float32Peak = MeasurePeak(form, ModelLoader.Load(SharedFixtures.Require($"models/tiny-sd15/{form.Model}")));
        TestContext.Out.WriteLine($"{form.Model} {session.Precision}: peak {peak} bytes, float32 {float32Peak} bytes ({(double)peak / float32Peak:P0})");
        // The VAE's float16 peak is 93% of its float32 one (19.7 against 21.1 MB). Both peaks are a convolution's padded
        // float32 copy of its input (the direct convolution of float16 weights), which is the same size whatever X's type:
        // the float32 peak fell from 34.4 to 25.2 MB (elementwise operations writing over dying inputs, Conv freeing its
        // input early and allocating its output last), then to 21.1 MB (no NHWC copies), the float16 one from 21.8 to 19.7.
        if (form.Component != "text_encoder")
            Assert.That(peak, Is.LessThanOrEqualTo(0.95 * float32Peak));
    }

    /// <summary>Runs <paramref name="form"/> twice on the reference inputs and checks each output; returns the session (for leak checks) and the last run's peak.</summary>
    private static InferenceSession RunAgainstReference(Form form, InferenceSessionOptions options, Func<Precision, double> tolerance, out long peak)
    {
        var model = SharedFixtures.Require($"models/tiny-sd15/{form.Model}");
        var reference = SharedFixtures.Require($"models/tiny-sd15/{form.Component}/ref");
        using var meta = JsonDocument.Parse(File.ReadAllText(Path.Combine(reference, "meta.json")));
        var session = new InferenceSession(ModelLoader.Load(model), options);
        var inputs = new Dictionary<string, Tensor>();
        var expected = new Dictionary<string, Tensor>();
        peak = 0;
        try
        {
            ReadInputs(form, meta, reference, session, inputs);
            foreach (var output in meta.RootElement.GetProperty("outputs").EnumerateArray())
                expected[output.GetProperty("name").GetString()!] = ReadRaw(reference, output, session);

            // Twice: a session runs again (the Ram provider from its cache the second time).
            for (var run = 1; run <= 2; run++)
            {
                // The original converter keeps only unconsumed tensors as outputs: the text encoder's
                // last_hidden_state (which the pooler reads) is asked for by name.
                using var result = session.Run(inputs, extraOutputs: expected.Keys);
                peak = result.PeakBytes;
                foreach (var (name, wanted) in expected)
                {
                    Assert.That(result.Outputs.TryGetValue(name, out var actual), $"output {name} (outputs: {string.Join(", ", result.Outputs.Keys)})");
                    Assert.That(actual!.ElementType, Is.EqualTo(ElementType.Float32), name);
                    Assert.That(actual.Shape, Is.EqualTo(wanted.Shape), name);
                    var (maxError, maxReference) = Compare(actual.Span<float>(), wanted.Span<float>());
                    TestContext.Out.WriteLine($"{form.Model} {name}: {options.WeightsProvider}, {options.Threads} threads, {session.Precision}, run {run}: " +
                                              $"max |error| {maxError:G3} ({maxError / maxReference:G3} of max |ref| {maxReference:G3}); " +
                                              $"{result.Elapsed.TotalMilliseconds:F0} ms; peak tracked {result.PeakBytes} bytes ({result.PeakBytes / 1048576.0:F2} MiB)");
                    Assert.That(maxError, Is.LessThanOrEqualTo(tolerance(session.Precision) * maxReference), $"{name}, run {run}");
                }
            }
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
        finally
        {
            foreach (var tensor in inputs.Values.Concat(expected.Values)) tensor.Dispose();
        }
    }

    /// <summary>The peak tracked bytes of one run of <paramref name="graph"/> (a load of <paramref name="form"/>) on the reference inputs, weights read per operation.</summary>
    internal static long MeasurePeak(Form form, ModelGraph graph)
    {
        var reference = SharedFixtures.Require($"models/tiny-sd15/{form.Component}/ref");
        using var meta = JsonDocument.Parse(File.ReadAllText(Path.Combine(reference, "meta.json")));
        using var session = new InferenceSession(graph, new InferenceSessionOptions { Threads = 1, WeightsProvider = WeightsProviderKind.NoCache });
        var inputs = new Dictionary<string, Tensor>();
        try
        {
            ReadInputs(form, meta, reference, session, inputs);
            using var result = session.Run(inputs);
            return result.PeakBytes;
        }
        finally
        {
            foreach (var tensor in inputs.Values) tensor.Dispose();
        }
    }

    /// <summary>The reference inputs, under the names the form's graph has (the converter renamed some).</summary>
    private static void ReadInputs(Form form, JsonDocument meta, string reference, InferenceSession session, Dictionary<string, Tensor> inputs)
    {
        var renamed = new Dictionary<string, string>();
        if (form.IsFolder && meta.RootElement.GetProperty("onnxstream_folders").GetProperty(form.Model).TryGetProperty("renamed_io", out var map))
            foreach (var entry in map.EnumerateObject()) renamed[entry.Name] = entry.Value.GetString()!;
        foreach (var input in meta.RootElement.GetProperty("inputs").EnumerateArray())
        {
            var name = input.GetProperty("name").GetString()!;
            inputs[renamed.GetValueOrDefault(name, name)] = ReadRaw(reference, input, session);
        }
    }

    /// <summary>
    /// Justifies the qu8 bound: ONNX Runtime, running the decoder's ONNX export with each weight replaced by
    /// the qu8 folder's dequantized value, agrees with this engine's qu8 run to float32 accuracy, so the
    /// distance to torch is the converter's quantization (per-tensor ranges clipped at the 0.1%/99.9%
    /// percentiles, zero points truncated) and not the engine.
    /// </summary>
    [Test]
    public void The_qu8_decoder_equals_ONNX_Runtime_on_the_same_dequantized_weights()
    {
        var folder = SharedFixtures.Require("models/tiny-sd15/vae_decoder_qu8");
        var onnx = SharedFixtures.Require("models/tiny-sd15/vae_decoder/model.onnx");
        var reference = SharedFixtures.Require("models/tiny-sd15/vae_decoder/ref");
        var graph = ModelLoader.Load(folder);
        var model = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnx));
        var initializers = model.Graph.Initializer.ToDictionary(t => t.Name);
        var constants = model.Graph.Node.Where(n => n.OpType == "Constant").ToDictionary(n => n.Output[0]);
        var replaced = 0;
        foreach (var weight in graph.WeightsInUseOrder().DistinctBy(w => w.Location!.Path))
        {
            if (weight.Quantization is not { } quantization) continue;
            var file = Path.GetFileNameWithoutExtension(weight.Location!.Path);
            if (file.EndsWith("_nchw", StringComparison.Ordinal)) file = file[..^5];
            Assert.That(NameEscaping.TryUnescape(file, out var name), file);
            var bytes = File.ReadAllBytes(weight.Location.Path);
            var values = bytes.Select(quantization.Dequantize).ToArray();
            var tensor = initializers.TryGetValue(name, out var initializer) ? initializer
                : constants.TryGetValue(name, out var constant) ? constant.Attribute.Single(a => a.Name == "value").T
                : throw new AssertionException($"{name} is neither an initializer nor a Constant of {onnx}");
            Assert.That(tensor.Dims.Aggregate(1L, (a, d) => a * d), Is.EqualTo(values.Length), name);
            tensor.DataType = (int)Onnx.TensorProto.Types.DataType.Float;
            tensor.FloatData.Clear();
            tensor.RawData = Google.Protobuf.ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            replaced++;
        }
        Assert.That(replaced, Is.GreaterThan(80), "quantized weights found in the ONNX graph");

        var latent = File.ReadAllBytes(Path.Combine(reference, "latent_sample.bin"));
        var latentValues = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(latent).ToArray();
        float[] expected;
        using (var ort = new Microsoft.ML.OnnxRuntime.InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(model)))
        using (var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(latentValues, [1, 4, 32, 32]))
        using (var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions())
        using (var outputs = ort.Run(runOptions, ["latent_sample"], [input], ["sample"]))
            expected = outputs[0].GetTensorDataAsSpan<float>().ToArray();

        using var session = new InferenceSession(graph, new InferenceSessionOptions { Threads = 2 });
        using var latentTensor = Tensor.From<float>(latentValues, [1, 4, 32, 32], session.Allocator);
        using var result = session.Run(new Dictionary<string, Tensor> { ["input.1"] = latentTensor });
        var (maxError, maxReference) = Compare(result.Outputs["sample"].Span<float>(), expected);
        TestContext.Out.WriteLine($"vae_decoder_qu8 vs ONNX Runtime with the dequantized weights: max |error| {maxError:G3} ({maxError / maxReference:G3} of max |ORT| {maxReference:G3})");
        Assert.That(maxError, Is.LessThanOrEqualTo(1e-4 * maxReference));
    }

    /// <summary>Max |actual - expected| (infinite when actual has a NaN) and max |expected|.</summary>
    internal static (double MaxError, double MaxReference) Compare(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double maxError = 0, maxReference = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            maxError = Math.Max(maxError, Math.Abs((double)actual[i] - expected[i]));
            if (double.IsNaN(actual[i])) maxError = double.PositiveInfinity;
            maxReference = Math.Max(maxReference, Math.Abs(expected[i]));
        }
        return (maxError, maxReference);
    }

    /// <summary>A reference tensor of ref/ described by its meta.json entry.</summary>
    internal static Tensor ReadRaw(string folder, JsonElement entry, InferenceSession session)
    {
        var type = entry.GetProperty("dtype").GetString() switch
        {
            "float32" => ElementType.Float32,
            "int64" => ElementType.Int64,
            var other => throw new NotSupportedException($"reference dtype {other}"),
        };
        var shape = entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
        var tensor = Tensor.Allocate(type, shape, session.Allocator);
        using var file = File.OpenHandle(Path.Combine(folder, entry.GetProperty("file").GetString()!));
        Assert.That(RandomAccess.Read(file, tensor.Bytes, 0), Is.EqualTo(tensor.ByteCount));
        return tensor;
    }
}
