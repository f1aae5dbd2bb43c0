using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// Conv with a float16 W as an fp16 model folder holds it, run by a session on the direct convolution (see
/// <c>DirectConvolution</c>) with every weights provider, against ONNX Runtime on the same float16-rounded weights: a
/// streamed kernel read and computed a block of output channels at a time, the Ram provider's kept OHWI kernel over two
/// runs, float16 activations, and the peak bytes of each.
/// </summary>
internal sealed class DirectConvolutionSessionTests
{
    private string _folder = null!;

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-direct-conv-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var provider in Enum.GetValues<WeightsProviderKind>())
        {
            yield return new TestCaseData(provider, 3, 2, "pads:1,1,1,1", false).SetArgDisplayNames(provider.ToString(), "3x3 batch 2");
            yield return new TestCaseData(provider, 1, 1, "strides:2,2;pads:0,1,1,0", false).SetArgDisplayNames(provider.ToString(), "1x1 strided");
            yield return new TestCaseData(provider, 3, 1, "pads:1,1,1,1", true).SetArgDisplayNames(provider.ToString(), "3x3 float16 activations");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Matches_ORT_with_every_provider(WeightsProviderKind provider, int kernel, int batch, string attributes, bool float16)
    {
        // 96 output channels of 256-channel rows (4608 bytes per 3x3 row): an 8 KiB budget makes blocks of 16 channels.
        const int inputs = 256, outputs = 96, size = 5;
        var weights = Kernels.Reference.RoundToHalf(Kernels.Reference.RandomFloats(outputs * inputs * kernel * kernel, 1, -0.1f, 0.1f));
        var bias = Kernels.Reference.RoundToHalf(Kernels.Reference.RandomFloats(outputs, 2, -1, 1));
        var x = Kernels.Reference.RandomFloats(batch * inputs * size * size, 3, -1, 1);
        if (float16) x = Kernels.Reference.RoundToHalf(x);
        File.WriteAllBytes(Path.Combine(_folder, "cw.bin"), weights.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray());
        File.WriteAllBytes(Path.Combine(_folder, "cb.bin"), bias.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray());
        var ortAttributes = new TestAttributes().Ints("kernel_shape", kernel, kernel);
        foreach (var attribute in attributes.Split(';'))
        {
            var (name, values) = (attribute.Split(':')[0], attribute.Split(':')[1].Split(',').Select(long.Parse).ToArray());
            ortAttributes.Ints(name, values);
        }
        var expected = OperatorTestHarness.RunOrt("Conv",
            [
                new TestInput("x", ElementType.Float32, [batch, inputs, size, size], x),
                new TestInput("w", ElementType.Float32, [outputs, inputs, kernel, kernel], weights),
                new TestInput("b", ElementType.Float32, [outputs], bias),
            ], ortAttributes, 1, 17)[0];
        var outputShape = string.Join(',', expected.Item2);
        File.WriteAllText(Path.Combine(_folder, "model.txt"),
            $"conv:Conv*input:x({batch},{inputs},{size},{size});cw.bin(float16:{outputs},{inputs},{kernel},{kernel});cb.bin(float16:{outputs})" +
            $"*output:y({outputShape})*kernel_shape:{kernel},{kernel};{attributes}\n");

        var options = new InferenceSessionOptions
        {
            Threads = 2, WeightsProvider = provider, WeightSliceBytes = 8192,
            Precision = float16 ? Precision.Float16Storage : Precision.Float32,
        };
        var session = new InferenceSession(ModelTextReader.Read(_folder), options);
        var kernelBytes = outputs * inputs * kernel * kernel * sizeof(ushort);
        for (var run = 0; run < 2; run++)
        {
            using var input = float16
                ? Tensor.From<Half>(x.Select(v => (Half)v).ToArray(), [batch, inputs, size, size], session.Allocator)
                : Tensor.From<float>(x, [batch, inputs, size, size], session.Allocator);
            using (var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input }))
            {
                var y = result.Outputs["y"];
                Assert.That(y.Shape, Is.EqualTo(expected.Item2));
                var actual = y.Span<float>().ToArray().Select(v => (double)v).ToArray();
                var scale = expected.Item3.Max(Math.Abs);
                for (var i = 0; i < actual.Length; i++)
                    Assert.That(actual[i], Is.EqualTo(expected.Item3[i]).Within((float16 ? 2e-3 : 1e-5) * scale), $"run {run + 1}: element {i}");
                TestContext.Out.WriteLine($"{provider}, run {run + 1}: peak tracked {result.PeakBytes} bytes (kernel {kernelBytes})");
                if (provider == WeightsProviderKind.Ram)
                    Assert.That(result.PeakBytes, Is.GreaterThan(2 * kernelBytes), "the Ram provider holds the kernel and its kept OHWI copy");
                else if (provider != WeightsProviderKind.MemoryMapped)
                {
                    // x, its padded float32 copy, y, the bias (and its float32 copy), and one block of 16 channels' rows with
                    // their OHWI copy (a 1x1 kernel's rows are its OHWI block): a third of the kernel; with float16
                    // activations, the block's float32 output too.
                    var activations = (float16 ? 2L : 4L) * (x.Length + y.ElementCount) + 4L * batch * (size + 2) * (size + 2) * inputs;
                    var block = 16L * kernelBytes / outputs * (kernel > 1 ? 2 : 1) + (float16 ? 16L * y.ElementCount / outputs * sizeof(float) : 0);
                    Assert.That(result.PeakBytes, Is.LessThanOrEqualTo(activations + block + outputs * 6), "a block of the kernel at a time");
                }
            }
            if (provider != WeightsProviderKind.Ram)
                Assert.That(session.Allocator.LiveBlocks, Is.EqualTo(1), "the session holds nothing between runs but the caller's input");
        }
        session.Dispose();
        Assert.That(session.Allocator.LiveBlocks, Is.Zero, "the session leaked tensors");
    }
}
