using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.Quantizing; // not "Quantization": that would hide the Kernels.Quantization type in every test namespace

/// <summary>
/// Activation quantization of the tiny-sd15 VAE decoder against the torch reference
/// (../shared/models/tiny-sd15/vae_decoder/ref). Quality is the PSNR over the decoded image's range:
/// 20·log10(R / RMSE) with R = max - min of the reference sample (5.77) and RMSE over all its values; the
/// issue asks for 30 dB. Memory is the run's peak of tracked native bytes against the same folder in float32
/// activations. Measured (2 threads): qu8 folder W8A32 42.6 dB; W8A8 static with a calibrated range_data.txt
/// 35.5 dB at 69% of the peak; fp32 folder static 36.3 dB at 81%, dynamic 34.4 dB at 94%.
/// </summary>
[Category("Models")]
internal sealed class VaeQuantizationTests
{
    private const string Latent = "input.1";

    private static readonly Lazy<RangeData> Calibrated = new(() =>
    {
        using var latent = ReadRef("latent_sample.bin", [1, 4, 32, 32]);
        return Calibrator.Calibrate(SharedFixtures.Require("models/tiny-sd15/vae_decoder_fp32"),
            new[] { new Dictionary<string, Tensor> { [Latent] = latent } }, new InferenceSessionOptions { Threads = 2 });
    });

    [Test]
    public void Calibration_records_a_range_for_every_float_operation_of_the_decoder()
    {
        var ranges = Calibrated.Value;
        var graph = ModelLoader.Load(SharedFixtures.Require("models/tiny-sd15/vae_decoder_fp32"));
        var measured = graph.Nodes.Where(n => n.OpType is "Conv" or "Add" or "Mul" or "Sigmoid" or "MatMul" or "Softmax" or "InstanceNormalization").ToList();
        Assert.That(measured, Has.Count.GreaterThan(100));
        foreach (var node in measured)
        {
            Assert.That(ranges.TryGetRange(node.Name, out var min, out var max), node.Name);
            Assert.That(min, Is.LessThan(max), node.Name);
        }
        // The last convolution makes the sample: its percentiles lie inside the reference's [-2.83, 2.95].
        var last = graph.Nodes.Single(n => n.Outputs.Any(o => o.Name == "sample"));
        Assert.That(ranges.TryGetRange(last.Name, out var lo, out var hi));
        TestContext.Out.WriteLine($"{ranges.Count} ranges; {last.Name}: [{lo}, {hi}]");
        Assert.That(lo, Is.InRange(-2.83f, -0.5f));
        Assert.That(hi, Is.InRange(0.5f, 2.95f));
    }

    [Test]
    public void Calibration_keeps_the_widest_range_over_the_input_sets()
    {
        var model = SharedFixtures.Require("models/tiny-sd15/vae_decoder_fp32");
        using var latent = ReadRef("latent_sample.bin", [1, 4, 32, 32]);
        using var doubled = Tensor.From<float>(latent.Span<float>().ToArray().Select(v => 2 * v).ToArray(), latent.Shape);
        var sets = new[] { new Dictionary<string, Tensor> { [Latent] = latent }, new Dictionary<string, Tensor> { [Latent] = doubled } };
        var progress = new List<int>();
        var both = Calibrator.Calibrate(model, sets, new InferenceSessionOptions { Threads = 2 }, new SynchronousProgress(progress));
        var second = Calibrator.Calibrate(model, sets[1..], new InferenceSessionOptions { Threads = 2 });
        Assert.That(progress, Is.EqualTo(new[] { 1, 2 }));
        var wider = 0;
        foreach (var name in both.Names)
        {
            both.TryGetRange(name, out var min, out var max);
            Assert.That(Calibrated.Value.TryGetRange(name, out var min1, out var max1), name);
            Assert.That(second.TryGetRange(name, out var min2, out var max2), name);
            Assert.That((min, max), Is.EqualTo((Math.Min(min1, min2), Math.Max(max1, max2))), name);
            if (min < min1 || max > max1) wider++;
        }
        Assert.That(wider, Is.GreaterThan(10), "the doubled latent widens many ranges");
        Assert.Throws<ArgumentException>(() => Calibrator.Calibrate(model, Array.Empty<Dictionary<string, Tensor>>()));
    }

    // Peak bounds relative to the float32-activation run of the same graph (the exported group normalizations kept, as
    // quantized runs keep them: their ranges name those nodes), measured 105%, 105% and 145%. The float32 peak keeps
    // falling with work the uint8 path does not gain from, whose peak is a convolution's float32 working copy: 34.4 MB,
    // then 25.2 (elementwise operations over dying inputs, Conv freeing its input early), then 21.0 (resnet shortcuts run
    // first, Conv rearranging a dying input in place), while the uint8 peaks went
    // 23.1, 23.1, 31.5 → 22.0, 22.1, 30.5 MB. These bounds guard against regressions; they no longer show a saving.
    [TestCase("vae_decoder_qu8", ActivationQuantization.Static, 1.1)]
    [TestCase("vae_decoder_fp32", ActivationQuantization.Static, 1.1)]
    [TestCase("vae_decoder_fp32", ActivationQuantization.Dynamic, 1.5)]
    public void Quantized_decoders_match_the_torch_reference(string folder, ActivationQuantization quantization, double peakRatio)
    {
        var (floatPsnr, floatPeak) = Decode(folder, new InferenceSessionOptions { Threads = 2, FuseGroupNorm = false });
        var options = new InferenceSessionOptions
        {
            Threads = 2,
            ActivationQuantization = quantization,
            RangeData = quantization == ActivationQuantization.Static ? Calibrated.Value : null,
        };
        var (psnr, peak) = Decode(folder, options);
        TestContext.Out.WriteLine($"{folder} {quantization}: PSNR {psnr:F2} dB (float32 activations {floatPsnr:F2} dB), " +
                                  $"peak {peak} bytes (float32 activations {floatPeak} bytes, {(double)peak / floatPeak:P0})");
        Assert.That(psnr, Is.GreaterThanOrEqualTo(30));
        Assert.That(peak, Is.LessThanOrEqualTo(peakRatio * floatPeak));
    }

    [Test]
    public void Uint8_operators_kept_by_the_Ram_provider_give_the_same_image_again()
    {
        using var latent = ReadRef("latent_sample.bin", [1, 4, 32, 32]);
        using var session = new InferenceSession(ModelLoader.Load(SharedFixtures.Require("models/tiny-sd15/vae_decoder_qu8")), new InferenceSessionOptions
        {
            Threads = 2, WeightsProvider = WeightsProviderKind.Ram, ActivationQuantization = ActivationQuantization.Static, RangeData = Calibrated.Value,
        });
        float[] Sample()
        {
            using var result = session.Run(new Dictionary<string, Tensor> { [Latent] = latent });
            return result.Outputs["sample"].Span<float>().ToArray();
        }
        var first = Sample();
        Assert.That(session.PreparedOperatorCount, Is.GreaterThan(20), "packed uint8 convolutions kept");
        Assert.That(Sample(), Is.EqualTo(first));
    }

    [Test]
    public void The_shipped_range_data_runs_the_qu8_decoder_from_its_folder()
    {
        // No RangeData or RangeDataPath: the folder's range_data.txt.
        var (psnr, _) = Decode("vae_decoder_qu8", new InferenceSessionOptions { Threads = 2, ActivationQuantization = ActivationQuantization.Static });
        TestContext.Out.WriteLine($"shipped range_data.txt: PSNR {psnr:F2} dB");
        Assert.That(psnr, Is.GreaterThanOrEqualTo(30));
    }

    [Test]
    public void Dynamic_quantization_touches_only_the_named_tensors()
    {
        using var latent = ReadRef("latent_sample.bin", [1, 4, 32, 32]);
        float[] Sample(ISet<string>? names)
        {
            using var session = new InferenceSession(ModelLoader.Load(SharedFixtures.Require("models/tiny-sd15/vae_decoder_fp32")),
                new InferenceSessionOptions
                {
                    Threads = 1, ActivationQuantization = names is null ? ActivationQuantization.None : ActivationQuantization.Dynamic, QuantizedTensors = names,
                    // Quantized runs keep the exported group normalizations: so must the plain one, for bit-equal results.
                    FuseGroupNorm = false,
                });
            using var result = session.Run(new Dictionary<string, Tensor> { [Latent] = latent });
            return result.Outputs["sample"].Span<float>().ToArray();
        }
        var plain = Sample(null);
        Assert.That(Sample(new HashSet<string>()), Is.EqualTo(plain), "an empty set quantizes nothing");
        var byNode = Sample(new HashSet<string> { "/decoder/conv_in/Conv" });
        Assert.That(byNode, Is.Not.EqualTo(plain));
        Assert.That(Sample(new HashSet<string> { "/decoder/conv_in/Conv_output_0" }), Is.EqualTo(byNode), "by output name as by node name");
    }

    [Test]
    public void Static_quantization_without_range_data_or_with_float16_is_refused()
    {
        var graph = ModelLoader.Load(SharedFixtures.Require("models/tiny-sd15/vae_decoder_fp32"));
        Assert.That(() => new InferenceSession(graph, new InferenceSessionOptions { ActivationQuantization = ActivationQuantization.Static }),
            Throws.ArgumentException.With.Message.Contains("range_data.txt"));
        Assert.That(() => new InferenceSession(graph, new InferenceSessionOptions { ActivationQuantization = ActivationQuantization.Dynamic, Precision = Precision.Float16Storage }),
            Throws.ArgumentException.With.Message.Contains("Float32"));
    }

    /// <summary>Decodes the reference latent with <paramref name="folder"/>; returns the PSNR against torch and the peak tracked bytes.</summary>
    private static (double Psnr, long Peak) Decode(string folder, InferenceSessionOptions options)
    {
        using var session = new InferenceSession(ModelLoader.Load(SharedFixtures.Require($"models/tiny-sd15/{folder}")), options);
        using var latent = ReadRef("latent_sample.bin", [1, 4, 32, 32]);
        using var expected = ReadRef("sample.bin", [1, 3, 256, 256]);
        using var result = session.Run(new Dictionary<string, Tensor> { [Latent] = latent });
        var sample = result.Outputs["sample"];
        Assert.That(sample.ElementType, Is.EqualTo(ElementType.Float32));
        Assert.That(session.Allocator.LiveBlocks, Is.EqualTo(1), "only the output is left");
        return (Psnr(sample.Span<float>(), expected.Span<float>()), result.PeakBytes);
    }

    /// <summary>20·log10(R / RMSE), R = max - min of <paramref name="reference"/>.</summary>
    private static double Psnr(ReadOnlySpan<float> actual, ReadOnlySpan<float> reference)
    {
        double sum = 0, min = double.MaxValue, max = double.MinValue;
        for (var i = 0; i < reference.Length; i++)
        {
            var e = (double)actual[i] - reference[i];
            sum += e * e;
            min = Math.Min(min, reference[i]);
            max = Math.Max(max, reference[i]);
        }
        return 20 * Math.Log10((max - min) / Math.Sqrt(sum / reference.Length));
    }

    private static Tensor ReadRef(string file, int[] shape)
    {
        var tensor = Tensor.Allocate(ElementType.Float32, shape);
        using var handle = File.OpenHandle(Path.Combine(SharedFixtures.Require("models/tiny-sd15/vae_decoder/ref"), file));
        Assert.That(RandomAccess.Read(handle, tensor.Bytes, 0), Is.EqualTo(tensor.ByteCount));
        return tensor;
    }

    /// <summary>Records reports on the reporting thread (Progress&lt;T&gt; posts them later).</summary>
    private sealed class SynchronousProgress(List<int> reports) : IProgress<int>
    {
        public void Report(int value) => reports.Add(value);
    }
}
