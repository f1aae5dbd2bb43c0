using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Gather: entries of the data along <c>axis</c> (default 0, negative counts from the end) at the
/// int64 or int32 indices, of any rank (negative indices count from the end; out-of-range ones are an
/// error). Output shape data[:axis] + indices + data[axis+1:]. Any element type; large gathers copy
/// their slices on <see cref="OperatorContext.Parallel"/>. A float16 or quantized uint8 weight (an embedding
/// table of an fp16 or uint8 model) is read as stored and only the gathered slices are widened to float32,
/// instead of the whole table as for other operators.
/// </summary>
internal sealed unsafe class GatherOperator : IOperator
{
    /// <inheritdoc />
    public bool TakesStoredWeight(int index) => index == 0;

    /// <summary>Gathers smaller than this many bytes run on the calling thread.</summary>
    private const long ParallelThresholdBytes = 1 << 16;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var data = context.Input(0);
        var indices = context.Input(1);
        var shape = InferShape(context, data, indices, out var axis);
        // A stored float16 or quantized weight (an fp16/uint8 model's embedding table): widen just the gathered rows.
        var widen = context.IsWeight(0) && (data.ElementType == ElementType.Float16 || data.Quantization is not null);
        var output = widen
            ? context.Output(0, ElementType.Float32, shape)
            : context.Output(0, data.ElementType, shape, data.Quantization);
        if (output.ElementCount == 0) return;

        var count = data.Shape[axis];
        CheckIndices(context, indices, count);
        var indexCount = (long)indices.ElementCount;
        var pointer = (nint)AxisHelper.Data(indices);
        var wide = indices.ElementType == ElementType.Int64;
        var outer = AxisHelper.Product(data.Shape, 0, axis);
        var sliceElements = AxisHelper.Product(data.Shape, axis + 1, data.Shape.Length);
        var sliceBytes = sliceElements * data.ElementType.Size();
        var quantization = data.Quantization;
        var source = (nint)AxisHelper.Data(data);
        var destination = (nint)AxisHelper.Data(output);
        var items = outer * indexCount;

        void Copy(long start, long end)
        {
            for (var item = start; item < end; item++)
            {
                var o = item / indexCount;
                var j = item % indexCount;
                var index = wide ? ((long*)pointer)[j] : ((int*)pointer)[j];
                if (index < 0) index += count;
                var from = (byte*)source + (o * count + index) * sliceBytes;
                if (widen)
                {
                    var to = new Span<float>((float*)destination + item * sliceElements, (int)sliceElements);
                    if (quantization is { } q)
                        for (var k = 0; k < to.Length; k++) to[k] = q.Dequantize(from[k]);
                    else
                        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(from, (int)sliceElements), to);
                }
                else
                    Buffer.MemoryCopy(from, (byte*)destination + item * sliceBytes, sliceBytes, sliceBytes);
            }
        }

        if (items * sliceBytes < ParallelThresholdBytes || context.Parallel.MaxDegreeOfParallelism <= 1 || items == 1)
        {
            Copy(0, items);
            return;
        }
        var chunks = (int)Math.Min(items, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk => Copy(items * chunk / chunks, items * (chunk + 1) / chunks));
    }

    /// <summary>The output shape and the normalized axis.</summary>
    public static int[] InferShape(OperatorContext context, Tensor data, Tensor indices, out int axis)
    {
        if (data.Shape.Length == 0) throw context.Error("data must have rank 1 or more, not be a scalar");
        if (indices.ElementType is not (ElementType.Int64 or ElementType.Int32))
            throw context.Error($"indices must be int64 or int32, not {indices.ElementType}");
        axis = AxisHelper.NormalizeAxis(context, context.Attributes.GetInt("axis", 0), data.Shape.Length);
        return [.. data.Shape[..axis], .. indices.Shape, .. data.Shape[(axis + 1)..]];
    }

    /// <summary>Checks every index against the axis' size.</summary>
    private static void CheckIndices(OperatorContext context, Tensor indices, int count)
    {
        if (indices.ElementType == ElementType.Int64)
        {
            foreach (var index in indices.Span<long>())
                if (index < -count || index >= count) throw OutOfRange(context, index, count);
        }
        else
        {
            foreach (var index in indices.Span<int>())
                if (index < -count || index >= count) throw OutOfRange(context, index, count);
        }
    }

    private static OperatorException OutOfRange(OperatorContext context, long index, int count) =>
        context.Error($"index {index} is out of range for an axis of size {count} (valid: {-count}..{count - 1})");
}
