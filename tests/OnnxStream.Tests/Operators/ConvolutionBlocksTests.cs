using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Kernels;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// Conv computed in blocks of input and output channels (<see cref="ConvolutionBlocks"/>), against ONNX Runtime: the
/// block sizes are forced small (a small weight slice budget, enough input channels to pass the input block limit),
/// with weights as the session hands them over (float32, or stored uint8 or float16 and not widened), packed per run or
/// kept. A float16 W of a non-grouped convolution takes the direct convolution instead (see DirectConvolutionTests).
/// </summary>
internal sealed class ConvolutionBlocksTests
{
    private static readonly TestAttributes Same3x3 = new TestAttributes().Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1);
    private StoredWeightHarness _harness = null!;

    [OneTimeSetUp]
    public void CreateHarness() => _harness = new StoredWeightHarness();

    [OneTimeTearDown]
    public void DisposeHarness() => _harness.Dispose();

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

    [TestCase(false, TestName = "Input_and_output_blocks_match_ORT")]
    [TestCase(true, TestName = "Kept_blocks_match_ORT_on_every_run")]
    public void Blocks_match_ORT(bool keep)
    {
        // 640 input channels × 9 = 5760 elements per output channel: blocks of 224, 224 and 192 input channels;
        // a budget of 16 rows of 224·9 float32 per thread (2 threads): output blocks of 16, 16 and 8.
        var geometry = new Convolution2dGeometry(3, 3, 640, 40, PaddingTop: 1, PaddingLeft: 1, PaddingBottom: 1, PaddingRight: 1);
        var plan = ConvolutionBlocks.Plan<float>(geometry, 16 * 224 * 9 * 4, keep: false);
        Assert.That((plan.InputBlock, plan.InputBlocks, plan.OutputBlock, plan.OutputBlocks), Is.EqualTo((224, 3, 16, 3)));
        using var prepared = keep ? new PreparedOperatorCache() : null;
        _harness.AssertMatchesOrt(new ConvOperator(), "Conv", Same3x3,
            [
                StoredOperand.Activation(TestInput.Floats("x", [1, 640, 5, 6], 1)),
                StoredOperand.Float32Weight(TestInput.Floats("w", [40, 640, 3, 3], 2, -0.05f, 0.05f)),
                StoredOperand.Float32Weight(TestInput.Floats("b", [40], 3)),
            ], 2 * 16 * 224 * 9 * 4, prepared, runs: keep ? 2 : 1);
        if (prepared is not null) Assert.That(prepared.Count, Is.EqualTo(1), "one node, its blocks kept once");
        Assert.That(_harness.Allocator.CurrentBytes, Is.Zero, "tensors leaked (XNNPACK's packed blocks are not tracked)");
    }

    [TestCase(1)]
    [TestCase(2)]
    public void An_input_that_dies_is_rearranged_in_place_into_channel_blocks_and_matches_ORT(int batch)
    {
        // Input blocks of 224, 224 and 192 channels (see above), each image's blocks rearranged where they are. The image is
        // large beside the kernel blocks, whose scratch copies (packed on both threads at once, or not) make the peak vary.
        var x = TestInput.Floats("x", [batch, 640, 40, 40], 4);
        long Peak(bool dies)
        {
            _harness.Allocator.ResetPeak();
            _harness.AssertMatchesOrt(new ConvOperator(), "Conv", Same3x3,
                [
                    StoredOperand.Activation(x),
                    StoredOperand.Float32Weight(TestInput.Floats("w", [40, 640, 3, 3], 2, -0.05f, 0.05f)),
                    StoredOperand.Float32Weight(TestInput.Floats("b", [40], 3)),
                ], 2 * 16 * 224 * 9 * 4, firstInputDies: dies);
            return _harness.Allocator.PeakBytes;
        }
        var (copied, inPlace) = (Peak(false), Peak(true));
        // No NHWC copy of x beside it: at most one block of channels (224 of 640).
        var xBytes = batch * 640 * 1600 * sizeof(float);
        TestContext.Out.WriteLine($"peak tracked: {copied} bytes with the NHWC copy, {inPlace} in place (x {xBytes})");
        Assert.That(inPlace, Is.LessThanOrEqualTo(copied - xBytes / 2));
    }

    [Test]
    public void A_strided_1x1_convolution_over_a_batch_in_input_blocks_matches_ORT() =>
        // 2600 input channels > 2304: two blocks (1312 + 1288); 1-byte budget: output blocks of 16.
        _harness.AssertMatchesOrt(new ConvOperator(), "Conv", new TestAttributes().Ints("kernel_shape", 1, 1).Ints("strides", 2, 2).Ints("pads", 0, 1, 1, 0),
            [
                StoredOperand.Activation(TestInput.Floats("x", [2, 2600, 3, 4], 4)),
                StoredOperand.Float32Weight(TestInput.Floats("w", [20, 2600, 1, 1], 5, -0.05f, 0.05f)),
                StoredOperand.Float32Weight(TestInput.Floats("b", [20], 6)),
            ], 1);

    [Test]
    public void Float16_weights_of_a_grouped_convolution_are_widened_as_stored() =>
        // Groups of 160 channels: one block, its float16 kernel widened when packed.
        _harness.AssertMatchesOrt(new ConvOperator(), "Conv", new TestAttributes().Ints("kernel_shape", 3, 3).Ints("pads", 1, 1, 1, 1).Int("group", 2),
            [
                StoredOperand.Activation(TestInput.Floats("x", [1, 320, 5, 4], 12)),
                StoredOperand.Float16Weight(TestInput.Floats("w", [32, 160, 3, 3], 13, -0.05f, 0.05f)),
                StoredOperand.Float16Weight(TestInput.Floats("b", [32], 14)),
            ], 2 * 16 * 160 * 9 * 4);

    [Test]
    public void Quantized_uint8_weights_are_dequantized_block_by_block() =>
        // 300 × 9 = 2700 elements per output channel: input blocks of 160 and 140 channels; output blocks of 16 and 8.
        _harness.AssertMatchesOrt(new ConvOperator(), "Conv", Same3x3,
            [
                StoredOperand.Activation(TestInput.Floats("x", [1, 300, 4, 4], 7)),
                StoredOperand.UInt8Weight(TestInput.Floats("w", [24, 300, 3, 3], 8, -0.1f, 0.1f), Quantization.FromRange(-0.1f, 0.1f)!.Value),
                null,
            ], 2 * 16 * 160 * 9 * 4);

    [Test]
    public void Float16_arithmetic_in_output_blocks_matches_ORT()
    {
        Reference.RequireFloat16();
        _harness.AssertMatchesOrt(new ConvOperator(), "Conv", Same3x3,
            [
                StoredOperand.Float16Activation(TestInput.Floats("x", [1, 48, 6, 6], 9)),
                StoredOperand.Float16Weight(TestInput.Floats("w", [40, 48, 3, 3], 10, -0.1f, 0.1f)),
                StoredOperand.Float16Weight(TestInput.Floats("b", [40], 11)),
            ], 2 * 16 * 48 * 9 * 2, float16Arithmetic: true, relative: 1e-2, absolute: 1e-2);
    }
}
