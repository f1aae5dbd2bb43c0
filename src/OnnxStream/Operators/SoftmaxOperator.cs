using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Softmax with opset-13 semantics: softmax along the one axis <c>axis</c> (default -1). model.txt
/// does not record the opset, so a model from opset &lt; 13 (where the input is flattened to 2-D at
/// <c>axis</c>, default 1, and softmax runs over all trailing dimensions together) gets opset-13 results;
/// the two agree whenever <c>axis</c> is the last axis. The last axis runs XNNPACK's softmax; any other
/// axis a managed, vectorized loop. float32, and float16 through float32. Under static activation quantization a
/// quantized input runs XNNPACK's uint8 softmax along the last axis when its fixed output encoding (scale 1/256, zero
/// point 0) suits the output (<see cref="QuantizedOperands.AllowsFixedOutput"/>) and XNNPACK can compute its rows
/// (<see cref="ActivationKernels.SoftmaxQUInt8Fits"/>), and is dequantized otherwise.
/// </summary>
internal sealed class SoftmaxOperator : IOperator
{
    /// <summary>Inner elements handled together by the managed loop.</summary>
    private const int Block = 256;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var axis = InferShape(context, x, out var shape);
        if (axis == shape.Length - 1 && QuantizedOperands.AllowsFixedOutput(context, x, Quantization.SoftmaxOutput) &&
            x.ElementCount > 0 && ActivationKernels.SoftmaxQUInt8Fits(x.ElementCount / shape[axis], shape[axis], x.Span<byte>(), x.Quantization!.Value.Scale))
        {
            var quantized = context.Output(0, ElementType.UInt8, shape, Quantization.SoftmaxOutput);
            ActivationKernels.SoftmaxQUInt8(context.Pool, x.ElementCount / shape[axis], shape[axis], x.Buffer<byte>(),
                x.Quantization!.Value.Scale, quantized.Buffer<byte>());
            return;
        }
        var output = context.Output(0, x.ElementType == ElementType.Float16 ? ElementType.Float16 : ElementType.Float32, shape);
        if (output.ElementCount == 0) return;

        var outer0 = (int)AxisHelper.Product(shape, 0, axis);
        if (x.ElementType == ElementType.Float16 && axis == shape.Length - 1)
        {
            SoftmaxRowsFloat16(context, x, output, outer0, shape[axis]);
            return;
        }
        var xf = Layout.ToFloat32(context, x, "input", out var ownsX);
        Tensor? result = null;
        try
        {
            result = output.ElementType == ElementType.Float32 ? output : context.Scratch(ElementType.Float32, shape);
            var outer = (int)AxisHelper.Product(shape, 0, axis);
            var channels = shape[axis];
            var inner = (int)AxisHelper.Product(shape, axis + 1, shape.Length);
            if (inner == 1)
            {
                ActivationKernels.Softmax(context.Pool, outer, channels, xf.Buffer<float>(), result.Buffer<float>());
                // XNNPACK's clamp turns NaN into -inf: a row with a NaN is all NaN, as in ONNX Runtime.
                if (NonFiniteScan.FirstNonFinite(result, context.Pool.ThreadCount) >= 0)
                    for (var row = 0; row < outer; row++)
                        if (NonFiniteScan.HasNaN(xf.Span<float>().Slice(row * channels, channels)))
                            result.Span<float>().Slice(row * channels, channels).Fill(float.NaN);
            }
            else
                SoftmaxMiddle(context, xf, result, outer, channels, inner);
            if (result != output) Layout.FromFloat32(context, result, output);
        }
        finally
        {
            if (ownsX) xf.Dispose();
            if (result != output) result?.Dispose();
        }
    }

    /// <summary>
    /// Softmax of float16 rows a block at a time (widened into a float32 block, computed by XNNPACK, rounded
    /// into the output), so no float32 copy of a large tensor (attention scores) ever exists.
    /// </summary>
    private static unsafe void SoftmaxRowsFloat16(OperatorContext context, Tensor x, Tensor output, int rows, int channels)
    {
        var blockRows = Math.Clamp(BlockElements / Math.Max(channels, 1), 1, rows);
        using var wide = context.Scratch(ElementType.Float32, [blockRows * channels]);
        using var result = context.Scratch(ElementType.Float32, [blockRows * channels]);
        var source = (Half*)AxisHelper.Data(x);
        var destination = (Half*)AxisHelper.Data(output);
        for (var row = 0; row < rows; row += blockRows)
        {
            var count = Math.Min(blockRows, rows - row);
            var elements = count * channels;
            var offset = (long)row * channels;
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(source + offset, elements), wide.Span<float>()[..elements]);
            using (var input = Memory.NativeBuffer<float>.Wrap((float*)AxisHelper.Data(wide), elements))
            using (var scores = Memory.NativeBuffer<float>.Wrap((float*)AxisHelper.Data(result), elements))
                ActivationKernels.Softmax(context.Pool, count, channels, input, scores);
            System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(result.Span<float>()[..elements], new Span<Half>(destination + offset, elements));
        }
    }

    /// <summary>Elements of float32 scratch per block of float16 rows (256 KiB).</summary>
    private const int BlockElements = 1 << 16;

    /// <summary>Softmax over the middle dimension of [outer, channels, inner], <see cref="Block"/> inner elements at a time.</summary>
    private static unsafe void SoftmaxMiddle(OperatorContext context, Tensor x, Tensor y, int outer, int channels, int inner)
    {
        var blocks = (inner + Block - 1) / Block;
        var items = (long)outer * blocks;
        var src = (nint)AxisHelper.Data(x);
        var dst = (nint)AxisHelper.Data(y);
        void Run(long start, long end)
        {
            Span<float> max = stackalloc float[Block];
            Span<float> sum = stackalloc float[Block];
            for (var item = start; item < end; item++)
            {
                var o = item / blocks;
                var i0 = (int)(item % blocks) * Block;
                var length = Math.Min(Block, inner - i0);
                var m = max[..length];
                var s = sum[..length];
                var plane = o * channels * (long)inner + i0;
                ReadOnlySpan<float> In(int c) => new((float*)src + plane + (long)c * inner, length);
                Span<float> Out(int c) => new((float*)dst + plane + (long)c * inner, length);

                In(0).CopyTo(m);
                for (var c = 1; c < channels; c++) TensorPrimitives.Max(m, In(c), m);
                s.Clear();
                for (var c = 0; c < channels; c++)
                {
                    var row = Out(c);
                    TensorPrimitives.Subtract(In(c), m, row);
                    TensorPrimitives.Exp(row, row);
                    TensorPrimitives.Add(s, row, s);
                }
                for (var c = 0; c < channels; c++)
                {
                    var row = Out(c);
                    TensorPrimitives.Divide(row, s, row);
                }
            }
        }
        if ((long)outer * channels * inner < 1 << 15 || context.Parallel.MaxDegreeOfParallelism == 1 || items == 1)
        {
            Run(0, items);
            return;
        }
        var chunks = (int)Math.Min(items, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk => Run(items * chunk / chunks, items * (chunk + 1) / chunks));
    }

    /// <inheritdoc />
    public bool TakesQuantized(int index) => true;

    /// <summary>Checks the input and <c>axis</c>; the output has the input's shape. Returns the normalized axis.</summary>
    internal static int InferShape(OperatorContext context, Tensor x, out int[] shape)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16) && !QuantizedOperands.IsQuantized(x))
            throw context.Error($"input must be float32 or float16, not {x.ElementType}");
        if (x.Shape.Length == 0) throw context.Error("input must have at least one dimension, got a scalar");
        shape = (int[])x.Shape.Clone();
        return AxisHelper.NormalizeAxis(context, context.Attributes.GetInt("axis", -1), x.Shape.Length);
    }
}
