using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// Conv computed in blocks of input and output channels (<see cref="ConvolutionBlocks"/>), against ONNX Runtime: the
/// block sizes are forced small (a small weight slice budget, enough input channels to pass the input block limit),
/// with weights as the session hands them over (stored float16 or uint8, not widened), packed per run or kept.
/// </summary>
internal sealed class ConvolutionBlocksTests
{
    private readonly NativeAllocator _allocator = new();
    private XnnThreadPool _pool = null!;

    [OneTimeSetUp]
    public void CreatePool() => _pool = XnnThreadPool.Create(2);

    [OneTimeTearDown]
    public void DisposePool() => _pool.Dispose();

    [TearDown]
    public void NoLeaks() => Assert.That(_allocator.CurrentBytes, Is.Zero, "tensors leaked");

    [Test]
    public void Blocks_are_balanced_aligned_and_bounded()
    {
        var unet = new Convolution2dGeometry(3, 3, 2560, 1280, PaddingTop: 1, PaddingLeft: 1, PaddingBottom: 1, PaddingRight: 1);
        var kept = ConvolutionBlocks.Plan<float>(unet, long.MaxValue, keep: false);
        Assert.That((kept.InputBlock, kept.InputBlocks, kept.OutputBlock, kept.OutputBlocks), Is.EqualTo((256, 10, 1280, 1)));
        // 8 MiB of 256·9 float32 rows: at most 910 output channels, so two blocks of 640.
        var streamed = ConvolutionBlocks.Plan<float>(unet, 8 << 20, keep: false);
        Assert.That((streamed.OutputBlock, streamed.OutputBlocks), Is.EqualTo((640, 2)));
        var small = ConvolutionBlocks.Plan<float>(unet with { GroupInputChannels = 320, GroupOutputChannels = 320 }, long.MaxValue, keep: false);
        Assert.That((small.InputBlock, small.InputBlocks), Is.EqualTo((160, 2)), "2880 elements per output channel: two blocks of 160 channels");
        var half = ConvolutionBlocks.Plan<Half>(unet, 1 << 20, keep: false);
        Assert.That((half.InputBlocks, half.OutputBlock, half.OutputBlocks), Is.EqualTo((1, 16, 80)), "float16 sums are not split; 1 MiB of 2560·9 float16 rows is 22 channels, aligned down to 16");
        var depthwise = ConvolutionBlocks.Plan<float>(new Convolution2dGeometry(3, 3, 1, 1, Groups: 4096), 1024, keep: false);
        Assert.That((depthwise.InputBlocks, depthwise.OutputBlocks), Is.EqualTo((1, 1)), "grouped convolutions are one block");
    }

    [TestCase(false, TestName = "Float16_weights_in_input_and_output_blocks_match_ORT")]
    [TestCase(true, TestName = "Kept_blocks_match_ORT_on_every_run")]
    public void Float16_weights_match_ORT(bool keep)
    {
        // 640 input channels × 9 = 5760 elements per output channel: blocks of 224, 224 and 192 input channels;
        // a budget of 16 rows of 224·9 float32: output blocks of 16, 16 and 8.
        var attributes = new TestAttributes().Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1);
        var x = TestInput.Floats("x", [1, 640, 5, 6], 1);
        var w = Rounded(TestInput.Floats("w", [40, 640, 3, 3], 2, -0.05f, 0.05f));
        var b = Rounded(TestInput.Floats("b", [40], 3));
        var geometry = new Convolution2dGeometry(3, 3, 640, 40, PaddingTop: 1, PaddingLeft: 1, PaddingBottom: 1, PaddingRight: 1);
        var plan = ConvolutionBlocks.Plan<float>(geometry, 16 * 224 * 9 * 4, keep: false);
        Assert.That((plan.InputBlock, plan.InputBlocks, plan.OutputBlock, plan.OutputBlocks), Is.EqualTo((224, 3, 16, 3)));
        using var prepared = keep ? new PreparedOperatorCache() : null;
        AssertConv(attributes, x, w, b, ElementType.Float16, 16 * 224 * 9 * 4, prepared, runs: keep ? 2 : 1);
        if (prepared is not null) Assert.That(prepared.Count, Is.EqualTo(1), "one node, its blocks kept once");
    }

    [Test]
    public void A_strided_1x1_convolution_over_a_batch_in_input_blocks_matches_ORT()
    {
        // 2600 input channels > 2304: two blocks (1312 + 1288); 1-byte budget: output blocks of 16.
        var attributes = new TestAttributes().Ints("kernel_shape", 1, 1).Ints("strides", 2, 2).Ints("pads", 0, 1, 1, 0);
        AssertConv(attributes, TestInput.Floats("x", [2, 2600, 3, 4], 4), TestInput.Floats("w", [20, 2600, 1, 1], 5, -0.05f, 0.05f),
            TestInput.Floats("b", [20], 6), ElementType.Float32, 1, null);
    }

    [Test]
    public void Quantized_uint8_weights_are_dequantized_block_by_block()
    {
        // 300 × 9 = 2700 elements per output channel: input blocks of 160 and 140 channels; output blocks of 16 and 8.
        var attributes = new TestAttributes().Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1);
        var quantization = Quantization.FromRange(-0.1f, 0.1f)!.Value;
        var w = TestInput.Floats("w", [24, 300, 3, 3], 8, -0.1f, 0.1f);
        var dequantized = ((float[])w.Data).Select(v => quantization.Dequantize(quantization.Quantize(v))).ToArray();
        AssertConv(attributes, TestInput.Floats("x", [1, 300, 4, 4], 7), w with { Data = dequantized }, null, ElementType.UInt8,
            16 * 160 * 9 * 4, null, quantization);
    }

    [Test]
    public void Float16_arithmetic_in_output_blocks_matches_ORT()
    {
        if (!NativeRuntime.SupportsFloat16) Assert.Ignore("no float16 arithmetic on this processor");
        var attributes = new TestAttributes().Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1);
        var x = Rounded(TestInput.Floats("x", [1, 48, 6, 6], 9));
        AssertConv(attributes, x, Rounded(TestInput.Floats("w", [40, 48, 3, 3], 10, -0.1f, 0.1f)), Rounded(TestInput.Floats("b", [40], 11)),
            ElementType.Float16, 16 * 48 * 9 * 2, null, float16Arithmetic: true);
    }

    /// <summary>Runs Conv with W and B stored as <paramref name="weightType"/> and compares it with ORT's float32 Conv of the same values.</summary>
    private void AssertConv(TestAttributes attributes, TestInput x, TestInput w, TestInput? b, ElementType weightType, long sliceBytes,
        PreparedOperatorCache? prepared, Quantization? quantization = null, bool float16Arithmetic = false, int runs = 1)
    {
        var expected = OperatorTestHarness.RunOrt("Conv", [x, w, b], attributes, 1, 17)[0].Item3;
        var inputs = new[] { x, w, b };
        var descriptors = inputs.Select((input, i) => input is null ? null : new TensorDescriptor(input.Name, input.Shape,
            i == 0 ? null : weightType, i == 1 ? quantization : null, i == 0 ? null : new WeightLocation("test", 0, 0))).ToArray();
        var node = new GraphNode("conv", "Conv", descriptors, [new TensorDescriptor("y", [])], new NodeAttributes(attributes.Text), "test:1");
        var tensors = new List<Tensor>();
        try
        {
            tensors.Add(float16Arithmetic ? ToHalf(x) : Tensor.From<float>((float[])x.Data, x.Shape, _allocator));
            tensors.Add(quantization is { } q ? Quantize(w, q) : ToType(w, weightType));
            if (b is not null) tensors.Add(ToType(b, weightType == ElementType.UInt8 ? ElementType.Float32 : weightType));
            var op = new ConvOperator();
            Assert.That(op.TakesStoredWeight(1) && op.TakesStoredWeight(2), "Conv takes W and B as stored");
            for (var run = 0; run < runs; run++)
            {
                var context = new OperatorContext(node, [.. tensors, .. b is null ? new Tensor?[] { null } : []], _pool, _allocator, prepared)
                {
                    WeightSliceBytes = sliceBytes,
                    Float16Kernels = float16Arithmetic,
                };
                op.Run(context);
                using var output = context.Outputs[0]!;
                var actual = output.ElementType == ElementType.Float16
                    ? output.Span<Half>().ToArray().Select(v => (double)v).ToArray()
                    : output.Span<float>().ToArray().Select(v => (double)v).ToArray();
                Assert.That(actual.Length, Is.EqualTo(expected.Length));
                var (relative, absolute) = float16Arithmetic ? (1e-2, 1e-2) : (1e-4, 1e-5);
                for (var i = 0; i < expected.Length; i++)
                    if (Math.Abs(actual[i] - expected[i]) > absolute + relative * Math.Abs(expected[i]))
                        Assert.Fail($"run {run + 1}: element {i} is {actual[i]}, ORT says {expected[i]}");
            }
        }
        finally
        {
            foreach (var tensor in tensors) tensor.Dispose();
        }
    }

    /// <summary>The input with its values rounded to float16 (still float32 data, for ORT).</summary>
    private static TestInput Rounded(TestInput input) => input with { Data = ((float[])input.Data).Select(v => (float)(Half)v).ToArray() };

    private Tensor ToType(TestInput input, ElementType type) => type == ElementType.Float16
        ? ToHalf(input)
        : Tensor.From<float>((float[])input.Data, input.Shape, _allocator);

    private Tensor ToHalf(TestInput input) => Tensor.From<Half>(((float[])input.Data).Select(v => (Half)v).ToArray(), input.Shape, _allocator);

    private Tensor Quantize(TestInput input, Quantization quantization)
    {
        var tensor = Tensor.Allocate(ElementType.UInt8, input.Shape, _allocator, quantization);
        var bytes = tensor.Span<byte>();
        var values = (float[])input.Data;
        for (var i = 0; i < values.Length; i++) bytes[i] = quantization.Quantize(values[i]);
        return tensor;
    }
}
