using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.StableDiffusion.Decoding;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.Tensors;
using OnnxStream.Tests.Models;
using OnnxStream.Tests.StableDiffusion.Pipeline;

namespace OnnxStream.Tests.StableDiffusion.Decoding;

/// <summary>
/// <see cref="StableDiffusionOptions.CalibrateDecoder"/> (the original's --decoder-calibrate) on a copy of tiny-sd15's
/// original-layout folders: the uint8 decoder is calibrated on the latent it decodes, its range_data.txt is replaced,
/// and its W8A8 decoding with those ranges matches the float32 decoder's.
/// </summary>
[Category("Models")]
internal sealed class DecoderCalibrationTests
{
    private const float LatentScale = 0.18215f;
    private string _models = "";

    [SetUp]
    public void CopyModels()
    {
        var shared = SharedFixtures.Require("models/tiny-sd15");
        _models = Directory.CreateTempSubdirectory("sd-calibrate-").FullName;
        foreach (var folder in new[] { "tokenizer", "text_encoder_fp32", "unet_fp16", "vae_decoder_fp16", "vae_decoder_qu8" })
        {
            Directory.CreateDirectory(Path.Combine(_models, folder));
            foreach (var file in Directory.EnumerateFiles(Path.Combine(shared, folder)))
                File.Copy(file, Path.Combine(_models, folder, Path.GetFileName(file)));
        }
    }

    /// <summary>Deletes the copy; there is none when the set-up skipped the test (no ../shared).</summary>
    [TearDown]
    public void DeleteModels()
    {
        if (_models.Length > 0) Directory.Delete(_models, recursive: true);
    }

    /// <summary>
    /// The latent: the torch reference's decoder input (already divided by the scaling factor), times the factor, as a
    /// generated latent is. Measured (2 threads): W8A8 with the written ranges against float32 activations and float32
    /// weights, PSNR 35.7 dB over the float32 output's range.
    /// </summary>
    [Test]
    public async Task Calibration_writes_the_uint8_decoders_ranges_and_its_W8A8_decoding_uses_them()
    {
        var rangeFile = Path.Combine(_models, "vae_decoder_qu8", "range_data.txt");
        var shipped = File.ReadAllText(rangeFile);
        var latent = ReferenceLatent();
        var options = new StableDiffusionOptions { ModelsPath = _models, MemoryProfile = MemoryProfile.LowMemory, CalibrateDecoder = true, Threads = 2 };
        var pipeline = new StableDiffusionPipeline(options);
        Assert.That(pipeline.DecoderRangeDataPath, Is.EqualTo(rangeFile));
        var calibratedPeaks = new List<long>();
        var calibrated = await pipeline.DecodeAsync(latent, [1, 4, 32, 32], new TinySd15PipelineTests.InlineProgress(p => calibratedPeaks.Add(p.PeakBytes)));

        // The file: NAME,MIN,MAX lines (RangeData.Load checks the form), new ranges, one for every convolution of the decoder.
        var text = File.ReadAllText(rangeFile);
        Assert.That(text, Is.Not.EqualTo(shipped));
        Assert.That(text.Split("\r\n", StringSplitOptions.RemoveEmptyEntries), Is.All.Matches(@"^[^,]+,-?[0-9.E+-]+,-?[0-9.E+-]+$"));
        Assert.That(File.Exists(rangeFile + ".tmp"), Is.False);
        var ranges = RangeData.Load(rangeFile);
        var graph = ModelLoader.Load(Path.Combine(_models, "vae_decoder_qu8"));
        Assert.That(ranges.Names, Is.SubsetOf(graph.Nodes.Select(n => n.Name)));
        var convolutions = graph.Nodes.Where(n => n.OpType == "Conv").ToList();
        Assert.That(convolutions, Has.Count.GreaterThan(20));
        foreach (var node in convolutions)
        {
            Assert.That(ranges.TryGetRange(node.Name, out var min, out var max), node.Name);
            Assert.That(min, Is.LessThan(max), node.Name);
        }

        // W8A8 with those ranges against the float32 decoder (float32 weights and activations) on the same input.
        var reference = RunDecoder("vae_decoder_fp32", new InferenceSessionOptions { Threads = 2 }, latent);
        var quantized = RunDecoder("vae_decoder_qu8", new InferenceSessionOptions
        {
            Threads = 2, ActivationQuantization = ActivationQuantization.Static, RangeDataPath = rangeFile,
        }, latent);
        var psnr = Psnr(quantized, reference);
        TestContext.Out.WriteLine($"W8A8 with the calibrated ranges vs float32: PSNR {psnr:F2} dB");
        Assert.That(psnr, Is.GreaterThanOrEqualTo(30));

        // The pipeline's own decoding after calibrating ran W8A8 with them: without a range_data.txt the same folder
        // decodes in float32 activations, with another peak, to another image. The float32 peak is now the lower one: its
        // group normalizations are fused, resnet shortcuts run first and Conv rearranges a dying input in place, which the
        // uint8 path's peak (a convolution's float32 working copy) does not gain from: measured 22.0 vs 21.0 MB (105%; it
        // was 23.1 vs 25.2 MB), see VaeQuantizationTests.
        File.Delete(rangeFile);
        var floatPeaks = new List<long>();
        var floatImage = await new StableDiffusionPipeline(new StableDiffusionOptions { ModelsPath = _models, MemoryProfile = MemoryProfile.LowMemory, Threads = 2 })
            .DecodeAsync(latent, [1, 4, 32, 32], new TinySd15PipelineTests.InlineProgress(p => floatPeaks.Add(p.PeakBytes)));
        TestContext.Out.WriteLine($"decoder peak: W8A8 {calibratedPeaks.Single()} bytes, float32 activations {floatPeaks.Single()} bytes");
        Assert.That(calibratedPeaks.Single(), Is.GreaterThan(0).And.LessThan(1.2 * floatPeaks.Single()).And.Not.EqualTo(floatPeaks.Single()));
        Assert.That(calibrated.Pixels, Is.Not.EqualTo(floatImage.Pixels));
    }

    [Test]
    public void Calibration_records_the_widest_range_over_every_tile_of_every_latent()
    {
        var latent = ReferenceLatent();
        var doubled = latent.Select(v => 2 * v).ToArray();
        var decoder = Path.Combine(_models, "vae_decoder_qu8");
        var options = new InferenceSessionOptions { Threads = 2 };
        var one = DecoderCalibration.Calibrate(decoder, [latent], 32, 32, LatentScale, options: options);
        var both = DecoderCalibration.Calibrate(decoder, [latent, doubled], 32, 32, LatentScale, options: options);
        var wider = both.Names.Count(name =>
        {
            one.TryGetRange(name, out var min1, out var max1);
            both.TryGetRange(name, out var min, out var max);
            Assert.That(min, Is.LessThanOrEqualTo(min1), name);
            Assert.That(max, Is.GreaterThanOrEqualTo(max1), name);
            return min < min1 || max > max1;
        });
        Assert.That(wider, Is.GreaterThan(10), "the doubled latent widens many ranges");
        Assert.That(() => DecoderCalibration.Calibrate(decoder, [new float[10]], 32, 32, LatentScale, options: options),
            Throws.ArgumentException.With.Message.Contains("(1, 4, 32, 32) needs 4096"));
    }

    /// <summary>The reference decoder input times the scaling factor: a latent as the sampler leaves it.</summary>
    internal static float[] ReferenceLatent()
    {
        var bytes = File.ReadAllBytes(SharedFixtures.Require("models/tiny-sd15/vae_decoder/ref/latent_sample.bin"));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        Assert.That(values, Has.Length.EqualTo(4 * 32 * 32));
        return values.Select(v => v * LatentScale).ToArray();
    }

    private float[] RunDecoder(string folder, InferenceSessionOptions options, float[] latent)
    {
        var path = folder == "vae_decoder_fp32" ? SharedFixtures.Require("models/tiny-sd15/vae_decoder_fp32") : Path.Combine(_models, folder);
        using var session = new InferenceSession(ModelLoader.Load(path), options);
        using var input = Tensor.From<float>(latent.Select(v => v / LatentScale).ToArray(), [1, 4, 32, 32], session.Allocator);
        using var result = session.Run(new Dictionary<string, Tensor> { ["input.1"] = input });
        return result.Outputs.Values.Single().Span<float>().ToArray();
    }

    /// <summary>20·log10(R / RMSE), R = max − min of <paramref name="reference"/>.</summary>
    private static double Psnr(float[] actual, float[] reference)
    {
        var rmse = Math.Sqrt(actual.Zip(reference, (a, r) => ((double)a - r) * ((double)a - r)).Average());
        return 20 * Math.Log10((reference.Max() - reference.Min()) / rmse);
    }
}
