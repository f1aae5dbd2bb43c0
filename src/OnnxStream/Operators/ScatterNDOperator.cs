using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX ScatterND (reduction "none"): a copy of data in which, for every index tuple in the last
/// dimension of the int64 indices (of length k ≤ rank; negative entries count from the end), the
/// slice data[tuple] is replaced by the matching slice of updates (shape indices.shape[:-1] +
/// data.shape[k:]). Tuples that repeat leave the last update, as ONNX Runtime does sequentially.
/// Any element type.
/// </summary>
internal sealed unsafe class ScatterNDOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var data = context.Input(0);
        var indices = context.Input(1);
        var updates = context.Input(2);
        var shape = InferShape(context, data, indices, updates);
        var output = context.Output(0, data.ElementType, shape, data.Quantization);
        if (output.ElementCount == 0) return;
        AxisHelper.CopyAll(context, data, output);

        var k = indices.Shape[^1];
        var tuples = AxisHelper.Product(indices.Shape, 0, indices.Shape.Length - 1);
        var strides = AxisHelper.Strides(data.Shape);
        var elementSize = data.ElementType.Size();
        var sliceBytes = AxisHelper.Product(data.Shape, k, data.Shape.Length) * elementSize;
        var index = indices.Span<long>();
        var source = AxisHelper.Data(updates);
        var destination = AxisHelper.Data(output);
        for (var t = 0; t < tuples; t++)
        {
            long offset = 0;
            for (var j = 0; j < k; j++)
            {
                var value = index[t * k + j];
                var size = data.Shape[j];
                if (value < -size || value >= size)
                    throw context.Error($"indices entry {value} is out of range for axis {j} of size {size} (valid: {-size}..{size - 1})");
                offset += (value < 0 ? value + size : value) * strides[j];
            }
            Buffer.MemoryCopy(source + t * sliceBytes, destination + offset * elementSize, sliceBytes, sliceBytes);
        }
    }

    /// <summary>Checks the inputs' shapes and types; the output has data's shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor data, Tensor indices, Tensor updates)
    {
        var reduction = context.Attributes.GetString("reduction", "none");
        if (reduction != "none")
            throw context.Error($"reduction '{reduction}' is not supported (only 'none')");
        if (indices.ElementType != ElementType.Int64) throw context.Error($"indices must be int64, not {indices.ElementType}");
        if (updates.ElementType != data.ElementType)
            throw context.Error($"updates must have the data's type {data.ElementType}, not {updates.ElementType}");
        if (data.Shape.Length == 0) throw context.Error("data must have rank 1 or more");
        if (indices.Shape.Length == 0) throw context.Error("indices must have rank 1 or more");
        var k = indices.Shape[^1];
        if (k > data.Shape.Length)
            throw context.Error($"the indices' last dimension {k} exceeds the data's rank {data.Shape.Length}");
        int[] expected = [.. indices.Shape[..^1], .. data.Shape[k..]];
        if (!expected.AsSpan().SequenceEqual(updates.Shape))
            throw context.Error($"updates {AxisHelper.Format(updates.Shape)} must have shape {AxisHelper.Format(expected)} " +
                $"(indices {AxisHelper.Format(indices.Shape)}, data {AxisHelper.Format(data.Shape)})");
        if (updates.Quantization != data.Quantization) throw context.Error("updates and data are quantized differently");
        return (int[])data.Shape.Clone();
    }
}
