using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.Quantizing;

/// <summary>
/// Hostile and broken quantization ranges (issue 13, cases 4 and 7): a plausible but wide range file runs (it once aborted
/// the process in XNNPACK's uint8 softmax: an abort here kills the test host, which is itself the regression signal), a file
/// that would quantize nothing is an error naming it, and calibration refuses non-finite inputs.
/// </summary>
internal sealed class RangeValidationTests
{
    private string _folder = "";

    [SetUp]
    public void WriteModel()
    {
        _folder = Directory.CreateTempSubdirectory("onnxstream-ranges-").FullName;
        File.WriteAllBytes(Path.Combine(_folder, "w.bin"), new float[] { 1, -2, 3, -4 }.SelectMany(BitConverter.GetBytes).ToArray());
        File.WriteAllText(Path.Combine(_folder, "model.txt"),
            "add:Add*input:x(1,4);w.bin(float32:4)*output:a(1,4)\n" +
            "mul:Mul*input:a(1,4);w.bin(float32:4)*output:y(1,4)\n");
    }

    [TearDown]
    public void DeleteModel() => Directory.Delete(_folder, recursive: true);

    // ±100 and ±1e6 over every tensor leave the attention scores on one uint8 level: each softmax row is constant, and
    // XNNPACK's 32-bit row sum wrapped to 0 (assertion 'vsum != 0', exit 134). ±30 always ran.
    [TestCase(30f)]
    [TestCase(100f)]
    [TestCase(1e6f)]
    [Category("Models")]
    public void Wide_ranges_on_the_tiny_qu8_decoder_run_without_aborting(float range)
    {
        var folder = SharedFixtures.Require("models/tiny-sd15/vae_decoder_qu8");
        var graph = ModelLoader.Load(folder);
        var ranges = new RangeData();
        foreach (var node in graph.Nodes) ranges.Include(node.Name, -range, range);
        using var session = new InferenceSession(graph, new InferenceSessionOptions
        {
            Threads = 2, ActivationQuantization = ActivationQuantization.Static, RangeData = ranges,
        });
        using var latent = Tensor.From<float>(Enumerable.Range(0, 4 * 32 * 32).Select(i => MathF.Sin(i * 0.37f)).ToArray(), [1, 4, 32, 32]);
        using var result = session.Run(new Dictionary<string, Tensor> { ["input.1"] = latent });
        var sample = result.Outputs["sample"];
        Assert.That(sample.Shape, Is.EqualTo(new[] { 1, 3, 256, 256 }));
        Assert.That(sample.Span<float>().ToArray().All(float.IsFinite));
    }

    [Test]
    public void The_uint8_softmax_refuses_rows_whose_sum_would_overflow_in_XNNPACK()
    {
        var constant = Enumerable.Repeat((byte)127, 1024).ToArray();
        var varied = constant.Select((v, i) => i == 5 ? (byte)126 : v).ToArray();
        Assert.That(ActivationKernels.SoftmaxQUInt8Fits(1, 1024, constant, 0.78f), Is.False);
        Assert.That(ActivationKernels.SoftmaxQUInt8Fits(1, 1024, varied, 0.78f), Is.True);
        Assert.That(ActivationKernels.SoftmaxQUInt8Fits(2, 512, constant, 0.78f), Is.True, "rows of 512: the table's top entry does not round up");
        using var pool = XnnThreadPool.Create(1);
        using var input = NativeBuffer<byte>.CopyOf(constant);
        using var output = NativeBuffer<byte>.Allocate(1024);
        Assert.Throws<ArgumentException>(() => ActivationKernels.SoftmaxQUInt8(pool, 1, 1024, input, 0.78f, output));
        using var rows = NativeBuffer<byte>.CopyOf(varied);
        ActivationKernels.SoftmaxQUInt8(pool, 1, 1024, rows, 0.78f, output);
    }

    [TestCase("", "holds no range")]
    [TestCase("add,0,0\r\nmul,0,0\r\n", "only empty ranges")]
    [TestCase("\n\n", "holds no range")]
    [TestCase("add,-1e-40,1e-40\n", "only empty ranges")]
    [TestCase("other,-1,1\n", "names no operation")]
    [TestCase("mul,-1,1\n", "names no operation")]
    public void A_range_file_that_would_quantize_nothing_is_an_error_naming_it(string text, string reason)
    {
        var path = Path.Combine(_folder, "ranges.txt");
        File.WriteAllText(path, text);
        var error = Assert.Throws<ModelFormatException>(() => new InferenceSession(ModelLoader.Load(_folder), new InferenceSessionOptions
        {
            ActivationQuantization = ActivationQuantization.Static, RangeDataPath = path,
        }).Dispose())!;
        Assert.That(error.Message, Does.StartWith(path).And.Contain(reason));
        // The same ranges given in the options.
        Assert.Throws<ModelFormatException>(() => new InferenceSession(ModelLoader.Load(_folder), new InferenceSessionOptions
        {
            ActivationQuantization = ActivationQuantization.Static, RangeData = RangeData.Load(path),
        }).Dispose());
    }

    [Test]
    public void A_range_file_with_one_usable_range_runs()
    {
        var path = Path.Combine(_folder, "ranges.txt");
        File.WriteAllText(path, "add,-10,10\nmul,0,0\n");
        using var session = new InferenceSession(ModelLoader.Load(_folder), new InferenceSessionOptions
        {
            ActivationQuantization = ActivationQuantization.Static, RangeDataPath = path,
        });
        using var x = Tensor.From<float>([1, 2, 3, 4], [1, 4]);
        using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = x });
        Assert.That(result.Outputs["y"].Span<float>().ToArray(), Is.EqualTo(new float[] { 2, 0, 18, 0 }).Within(0.5));
    }

    [TestCase(float.NaN)]
    [TestCase(float.PositiveInfinity)]
    public void Calibration_refuses_non_finite_inputs_naming_the_input_and_set(float bad)
    {
        var graph = ModelLoader.Load(_folder);
        using var good = Tensor.From<float>([1, 2, 3, 4], [1, 4]);
        using var broken = Tensor.From<float>([1, bad, 3, 4], [1, 4]);
        var sets = new[] { new Dictionary<string, Tensor> { ["x"] = good }, new Dictionary<string, Tensor> { ["x"] = broken } };
        var error = Assert.Throws<ArgumentException>(() => Calibrator.Calibrate(graph, sets))!;
        Assert.That(error.Message, Does.Contain("'x'").And.Contain("input set 2").And.Contain("NaN or infinity"));
        Assert.That(Calibrator.Calibrate(graph, sets[..1]).Count, Is.EqualTo(2), "finite inputs calibrate");
    }
}
