using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

internal sealed class FullyConnectedTests : KernelTestBase
{
    [TestCase(1, 1, 1, false, true)]
    [TestCase(7, 17, 5, false, false)]
    [TestCase(17, 7, 33, true, true)]
    [TestCase(3, 1000, 9, false, true)]
    [TestCase(2, 1031, 1027, true, false)]
    public void Float32_matches_reference(int batch, int inputs, int outputs, bool transposed, bool withBias)
    {
        var weights = Reference.RandomFloats(inputs * outputs, 1);
        var bias = withBias ? Reference.RandomFloats(outputs, 2) : null;
        var input = Reference.RandomFloats(batch * inputs, 3);
        using var op = FullyConnectedOperator.CreateFloat32(inputs, outputs, weights, bias, transposed);
        using var inputBuffer = NativeBuffer<float>.CopyOf(input);
        using var output = NativeBuffer<float>.Allocate(batch * outputs);
        var expected = Reference.FullyConnected(input, weights, bias, batch, inputs, outputs, transposed);

        WithEachThreadCount(pool =>
        {
            output.Span.Clear();
            op.Run(pool, batch, inputBuffer, output);
            Reference.AssertClose(output.Span, expected, 1e-5, 1e-5 * Math.Sqrt(inputs));
        });
    }

    [Test]
    public void An_output_stride_writes_the_outputs_into_wider_rows()
    {
        // Output features 4..10 of 13-wide rows; the rest of each row stays as it was.
        const int batch = 5, inputs = 9, outputs = 7, stride = 13, first = 4;
        var weights = Reference.RandomFloats(inputs * outputs, 5);
        var bias = Reference.RandomFloats(outputs, 6);
        var input = Reference.RandomFloats(batch * inputs, 7);
        using var op = FullyConnectedOperator.CreateFloat32(inputs, outputs, weights, bias, transposeWeights: true, outputStride: stride);
        Assert.That(op.OutputStride, Is.EqualTo(stride));
        using var inputBuffer = NativeBuffer<float>.CopyOf(input);
        using var rows = NativeBuffer<float>.Allocate(batch * stride);
        var expected = Reference.FullyConnected(input, weights, bias, batch, inputs, outputs, true);
        WithEachThreadCount(pool =>
        {
            rows.Span.Fill(-3);
            unsafe
            {
                op.Run(pool, batch, inputBuffer, NativeBuffer<float>.Wrap(rows.Pointer + first, rows.Length - first));
            }
            for (var b = 0; b < batch; b++)
            {
                Reference.AssertClose(rows.Span.Slice(b * stride + first, outputs), expected.AsSpan(b * outputs, outputs).ToArray(), 1e-5, 1e-5);
                for (var j = 0; j < stride; j++)
                    if (j is < first or >= first + outputs) Assert.That(rows.Span[b * stride + j], Is.EqualTo(-3f), $"row {b} column {j}");
            }
        });
        Assert.Throws<ArgumentOutOfRangeException>(() => FullyConnectedOperator.CreateFloat32(inputs, outputs, weights, outputStride: outputs - 1));
    }

    [Test]
    public void Float32_clamps_to_output_range_and_runs_many_times()
    {
        var weights = Reference.RandomFloats(16 * 8, 4);
        using var pool = XnnThreadPool.Create(2);
        using var op = FullyConnectedOperator.CreateFloat32(16, 8, weights, outputMin: -0.25f, outputMax: 0.5f);
        using var output = NativeBuffer<float>.Allocate(3 * 8);
        for (var run = 0; run < 3; run++)
        {
            var input = Reference.RandomFloats(3 * 16, 10 + run);
            using var inputBuffer = NativeBuffer<float>.CopyOf(input);
            op.Run(pool, 3, inputBuffer, output);
            var expected = Array.ConvertAll(Reference.FullyConnected(input, weights, null, 3, 16, 8, false), v => Math.Clamp(v, -0.25f, 0.5f));
            Reference.AssertClose(output.Span, expected, 1e-5, 1e-5);
        }
    }

    [TestCase(5, 33, 17, false)]
    [TestCase(9, 1000, 7, true)]
    public void Float16_matches_reference(int batch, int inputs, int outputs, bool transposed)
    {
        RequireFloat16();
        var weights = Reference.RoundToHalf(Reference.RandomFloats(inputs * outputs, 5));
        var bias = Reference.RoundToHalf(Reference.RandomFloats(outputs, 6));
        var input = Reference.RoundToHalf(Reference.RandomFloats(batch * inputs, 7));
        using var op = FullyConnectedOperator.CreateFloat16(inputs, outputs, Reference.ToHalf(weights), Reference.ToHalf(bias), transposed);
        using var inputBuffer = NativeBuffer<Half>.CopyOf(Reference.ToHalf(input));
        using var output = NativeBuffer<Half>.Allocate(batch * outputs);
        var expected = Reference.FullyConnected(input, weights, bias, batch, inputs, outputs, transposed);

        WithEachThreadCount(pool =>
        {
            output.Span.Clear();
            op.Run(pool, batch, inputBuffer, output);
            Reference.AssertCloseFloat16Sums(output.Span, expected, inputs);
        });
    }

    [TestCase(1, 7, 5, false)]
    [TestCase(7, 1000, 17, true)]
    public void QUInt8_is_within_two_quantization_steps(int batch, int inputs, int outputs, bool transposed)
    {
        var inputQ = new Quantization(1f / 127, 128);
        var weightsQ = new Quantization(1f / 100, 120);
        var outputQ = new Quantization(Math.Max(0.02f, 0.6f * MathF.Sqrt(inputs) / 127), 128);
        var input = Reference.Quantize(Reference.RandomFloats(batch * inputs, 8), inputQ);
        var weights = Reference.Quantize(Reference.RandomFloats(inputs * outputs, 9), weightsQ);
        var biasReal = Reference.RandomFloats(outputs, 10, -0.5f, 0.5f);
        var biasScale = inputQ.Scale * weightsQ.Scale;
        var bias = Array.ConvertAll(biasReal, v => (int)MathF.Round(v / biasScale));
        using var op = FullyConnectedOperator.CreateQUInt8(inputs, outputs, inputQ, weightsQ, weights, bias, outputQ, transposed);
        using var inputBuffer = NativeBuffer<byte>.CopyOf(input);
        using var output = NativeBuffer<byte>.Allocate(batch * outputs);
        var expected = Reference.FullyConnected(Reference.Dequantize(input, inputQ), Reference.Dequantize(weights, weightsQ),
            Array.ConvertAll(bias, b => b * biasScale), batch, inputs, outputs, transposed);
        var clamped = Array.ConvertAll(expected, v => Math.Clamp(v, outputQ.Dequantize(0), outputQ.Dequantize(255)));

        WithEachThreadCount(pool =>
        {
            output.Span.Clear();
            op.Run(pool, batch, inputBuffer, output);
            Reference.AssertClose(Reference.Dequantize(output.Span, outputQ), clamped, 0, 2.01 * outputQ.Scale);
        });
    }

    [Test]
    public void Running_on_the_wrong_element_type_or_short_buffers_throws()
    {
        using var pool = XnnThreadPool.Create(1);
        using var op = FullyConnectedOperator.CreateFloat32(4, 3, new float[12]);
        using var halfInput = NativeBuffer<Half>.Allocate(8);
        using var halfOutput = NativeBuffer<Half>.Allocate(6);
        using var shortInput = NativeBuffer<float>.Allocate(7);
        using var output = NativeBuffer<float>.Allocate(6);
        Assert.Throws<ArgumentException>(() => op.Run(pool, 2, halfInput, halfOutput));
        Assert.That(Assert.Throws<ArgumentException>(() => op.Run(pool, 2, shortInput, output))!.Message, Does.Contain("8"));
        Assert.That(Assert.Throws<ArgumentException>(() => FullyConnectedOperator.CreateFloat32(4, 3, new float[11]))!.Message,
            Does.Contain("12 weights"));
    }
}
