using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.Quantizing; // not "Quantization": that would hide the Kernels.Quantization type in every test namespace

/// <summary>
/// Activation quantization of the tiny-sd15 VAE decoder against the torch reference
/// (../shared/models/tiny-sd15/vae_decoder/ref). Quality is the PSNR over the decoded image's range:
/// 20·log10(R / RMSE) with R = max - min of the reference sample and RMSE over all its values.
/// </summary>
[Category("Models")]
internal sealed class VaeQuantizationTests
{
    private const string Latent = "input.1";

    [Test]
    public void Calibration_records_a_range_for_every_float_operation_of_the_decoder()
    {
        var ranges = Calibrate();
        var graph = ModelLoader.Load(SharedFixtures.Require("models/tiny-sd15/vae_decoder_fp32"));
        var singleFloat = graph.Nodes.Where(n => n.Outputs.Length == 1 && n.OpType is "Conv" or "Add" or "Mul" or "Sigmoid" or "MatMul" or "Softmax").ToList();
        Assert.That(singleFloat, Is.Not.Empty);
        foreach (var node in singleFloat)
        {
            Assert.That(ranges.TryGetRange(node.Name, out var min, out var max), node.Name);
            Assert.That(min, Is.LessThan(max), node.Name);
        }
        // The sample's range: the reference is within [-2.83, 2.95], the percentiles a little inside.
        var last = graph.Nodes.Single(n => n.Outputs.Any(o => o.Name == "sample"));
        Assert.That(ranges.TryGetRange(last.Name, out var lo, out var hi));
        TestContext.Out.WriteLine($"{ranges.Count} ranges; {last.Name}: [{lo}, {hi}]");
        Assert.That(lo, Is.InRange(-2.83f, -1f));
        Assert.That(hi, Is.InRange(1f, 2.95f));
    }

    [TestCase("vae_decoder_qu8", ActivationQuantization.None)]
    [TestCase("vae_decoder_qu8", ActivationQuantization.Static)]
    [TestCase("vae_decoder_fp32", ActivationQuantization.None)]
    [TestCase("vae_decoder_fp32", ActivationQuantization.Static)]
    [TestCase("vae_decoder_fp32", ActivationQuantization.Dynamic)]
    public void Quantized_decoders_match_the_torch_reference(string folder, ActivationQuantization quantization)
    {
        var options = new InferenceSessionOptions
        {
            Threads = 2,
            WeightsProvider = WeightsProviderKind.NoCache,
            ActivationQuantization = quantization,
            RangeData = quantization == ActivationQuantization.Static ? Calibrate() : null,
        };
        var (psnr, peak) = Decode(folder, options);
        TestContext.Out.WriteLine($"{folder} {quantization}: PSNR {psnr:F2} dB, peak {peak} bytes");
    }

    private static RangeData Calibrate()
    {
        var model = SharedFixtures.Require("models/tiny-sd15/vae_decoder_fp32");
        using var latent = ReadRef("latent_sample.bin", [1, 4, 32, 32]);
        return Calibrator.Calibrate(model, new[] { new Dictionary<string, Tensor> { [Latent] = latent } }, new InferenceSessionOptions { Threads = 2 });
    }

    internal static (double Psnr, long Peak) Decode(string folder, InferenceSessionOptions options)
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
    internal static double Psnr(ReadOnlySpan<float> actual, ReadOnlySpan<float> reference)
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
}
