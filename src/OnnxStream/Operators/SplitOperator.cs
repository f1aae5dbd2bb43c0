using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Split: cuts its input along <c>axis</c> (default 0) into one piece per output. The sizes come
/// from the optional <c>split</c> input (int64, opset 13+), else the <c>split</c> attribute (before
/// opset 13), else equal parts, the last one smaller when the size does not divide (opset 18's
/// <c>num_outputs</c> rule). Any element type.
/// </summary>
internal sealed class SplitOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var input = context.Input(0);
        var splitInput = context.OptionalInput(1);
        var sizes = splitInput is not null
            ? AxisHelper.ReadIndices(context, splitInput, "input 'split'")
            : context.Attributes.GetInts("split");
        var shapes = InferShapes(context, input.Shape, context.Attributes.GetInt("axis", 0), sizes,
            context.Attributes.Has("num_outputs") ? context.Attributes.GetInt("num_outputs", 0) : null,
            context.OutputCount, out var axis);

        var inputStrides = AxisHelper.Strides(input.Shape);
        long offset = 0;
        for (var i = 0; i < shapes.Length; i++)
        {
            var output = context.Output(i, input.ElementType, shapes[i]);
            if (output.ElementCount > 0)
                AxisHelper.Copy(context, input, offset, inputStrides, output, 0, AxisHelper.Strides(shapes[i]), shapes[i]);
            offset += shapes[i][axis] * inputStrides[axis];
        }
    }

    /// <summary>The shapes of the <paramref name="outputCount"/> outputs.</summary>
    public static int[][] InferShapes(OperatorContext context, int[] inputShape, long axisAttribute, long[]? sizes,
        long? numOutputs, int outputCount, out int axis)
    {
        var rank = inputShape.Length;
        if (rank == 0) throw context.Error("cannot split a scalar");
        axis = AxisHelper.NormalizeAxis(context, axisAttribute, rank);
        var dimension = inputShape[axis];
        if (outputCount < 1) throw context.Error("has no outputs");
        if (sizes is not null)
        {
            if (sizes.Length != outputCount)
                throw context.Error($"split has {sizes.Length} sizes {AxisHelper.Format(sizes)} but the node has {outputCount} outputs");
            long sum = 0;
            foreach (var size in sizes)
            {
                if (size < 0) throw context.Error($"split {AxisHelper.Format(sizes)} has a negative size");
                sum += size;
            }
            if (sum != dimension)
                throw context.Error($"split {AxisHelper.Format(sizes)} sums to {sum}, but axis {axis} of {AxisHelper.Format(inputShape)} has {dimension}");
        }
        else
        {
            if (numOutputs is { } n && n != outputCount)
                throw context.Error($"num_outputs is {n} but the node has {outputCount} outputs");
            var chunk = (dimension + outputCount - 1) / outputCount;
            var last = dimension - (long)chunk * (outputCount - 1);
            if (last < 0 || (last == 0 && dimension > 0))
                throw context.Error($"axis {axis} of {AxisHelper.Format(inputShape)} ({dimension}) cannot be split into {outputCount} parts");
            sizes = new long[outputCount];
            Array.Fill(sizes, chunk);
            sizes[^1] = last;
        }
        var shapes = new int[outputCount][];
        for (var i = 0; i < outputCount; i++)
        {
            shapes[i] = (int[])inputShape.Clone();
            shapes[i][axis] = (int)sizes[i];
        }
        return shapes;
    }
}
