using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Tile: the input repeated repeats[i] times along each axis i (repeats: int64, one non-negative
/// value per input dimension). Any element type; one strided copy over [repeat, dim] axis pairs.
/// </summary>
internal sealed class TileOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var input = context.Input(0);
        var shape = InferShape(context, input, context.Input(1), out var repeats);
        var output = context.Output(0, input.ElementType, shape, input.Quantization);
        if (output.ElementCount == 0) return;
        // Output index along axis i = r·dim + k: copy over [r0, d0, r1, d1, ...], the source ignoring r.
        var rank = shape.Length;
        var sourceStrides = AxisHelper.Strides(input.Shape);
        var outputStrides = AxisHelper.Strides(shape);
        var copyShape = new int[2 * rank];
        var from = new long[2 * rank];
        var to = new long[2 * rank];
        for (var i = 0; i < rank; i++)
        {
            copyShape[2 * i] = repeats[i];
            copyShape[2 * i + 1] = input.Shape[i];
            from[2 * i] = 0;
            from[2 * i + 1] = sourceStrides[i];
            to[2 * i] = input.Shape[i] * outputStrides[i];
            to[2 * i + 1] = outputStrides[i];
        }
        AxisHelper.Copy(context, input, 0, from, output, 0, to, copyShape);
    }

    /// <summary>The output shape (input dimension × repeat per axis) and the repeats.</summary>
    public static int[] InferShape(OperatorContext context, Tensor input, Tensor repeatsInput, out int[] repeats)
    {
        if (repeatsInput.ElementType != ElementType.Int64)
            throw context.Error($"repeats must be int64, not {repeatsInput.ElementType}");
        var values = AxisHelper.ReadIndices(context, repeatsInput, "repeats");
        var rank = input.Shape.Length;
        if (values.Length != rank)
            throw context.Error($"repeats {AxisHelper.Format(values)} has {values.Length} values; the input {AxisHelper.Format(input.Shape)} has rank {rank}");
        repeats = new int[rank];
        var shape = new int[rank];
        for (var i = 0; i < rank; i++)
        {
            var size = values[i] * input.Shape[i];
            if (values[i] < 0 || values[i] > int.MaxValue || size > int.MaxValue)
                throw context.Error($"repeats {AxisHelper.Format(values)} are invalid for the input {AxisHelper.Format(input.Shape)}");
            repeats[i] = (int)values[i];
            shape[i] = (int)size;
        }
        return shape;
    }
}
