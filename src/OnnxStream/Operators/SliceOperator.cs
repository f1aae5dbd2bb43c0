using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Slice (opset 10+): inputs data, starts, ends, optional axes and optional steps (int64 or int32).
/// Negative indices count from the end, out-of-range starts and ends are clamped, steps may be negative.
/// The opset-1 form (starts, ends, axes as attributes) is accepted too. Any element type.
/// </summary>
internal sealed class SliceOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var data = context.Input(0);
        long[] starts, ends;
        long[]? axes, steps;
        if (context.InputCount == 1 && context.Attributes.Has("starts"))
        {
            starts = context.Attributes.GetInts("starts")!;
            ends = context.Attributes.GetInts("ends") ?? throw context.Error("attribute 'ends' is required");
            axes = context.Attributes.GetInts("axes");
            steps = null;
        }
        else
        {
            starts = AxisHelper.ReadIndices(context, context.Input(1), "input 'starts'");
            ends = AxisHelper.ReadIndices(context, context.Input(2), "input 'ends'");
            axes = context.OptionalInput(3) is { } a ? AxisHelper.ReadIndices(context, a, "input 'axes'") : null;
            steps = context.OptionalInput(4) is { } s ? AxisHelper.ReadIndices(context, s, "input 'steps'") : null;
        }

        var shape = InferShape(context, data.Shape, starts, ends, axes, steps, out var first, out var step);
        var output = context.Output(0, data.ElementType, shape);
        if (output.ElementCount == 0) return;
        var strides = AxisHelper.Strides(data.Shape);
        long offset = 0;
        var sourceStrides = new long[shape.Length];
        for (var d = 0; d < shape.Length; d++)
        {
            offset += first[d] * strides[d];
            sourceStrides[d] = step[d] * strides[d];
        }
        AxisHelper.Copy(context, data, offset, sourceStrides, output, 0, AxisHelper.Strides(shape), shape);
    }

    /// <summary>
    /// The output shape, with per input axis the first index taken (<paramref name="first"/>) and the
    /// step (<paramref name="step"/>); axes not sliced take everything with step 1.
    /// </summary>
    public static int[] InferShape(OperatorContext context, int[] inputShape, long[] starts, long[] ends, long[]? axes,
        long[]? steps, out long[] first, out long[] step)
    {
        var rank = inputShape.Length;
        if (starts.Length != ends.Length)
            throw context.Error($"starts and ends have {starts.Length} and {ends.Length} elements");
        if (axes is not null && axes.Length != starts.Length)
            throw context.Error($"axes has {axes.Length} elements but starts and ends have {starts.Length}");
        if (steps is not null && steps.Length != starts.Length)
            throw context.Error($"steps has {steps.Length} elements but starts and ends have {starts.Length}");
        if (axes is null && starts.Length > rank)
            throw context.Error($"starts and ends have {starts.Length} elements but the data {AxisHelper.Format(inputShape)} has rank {rank}");

        var shape = (int[])inputShape.Clone();
        first = new long[rank];
        step = new long[rank];
        Array.Fill(step, 1L);
        var seen = new bool[rank];
        for (var i = 0; i < starts.Length; i++)
        {
            var axis = axes is null ? i : AxisHelper.NormalizeAxis(context, axes[i], rank, $"axes[{i}]");
            if (seen[axis]) throw context.Error($"axis {axis} is sliced twice (axes {AxisHelper.Format(axes!)})");
            seen[axis] = true;
            var s = steps?[i] ?? 1;
            if (s == 0) throw context.Error($"steps[{i}] is 0");
            if (s == long.MinValue) s = -long.MaxValue; // same slice, and negatable
            long dimension = inputShape[axis];
            var start = starts[i];
            var end = ends[i];
            if (start < 0) start += dimension;
            if (end < 0) end += dimension;
            long count;
            if (s > 0)
            {
                start = Math.Clamp(start, 0, dimension);
                end = Math.Clamp(end, 0, dimension);
                count = end > start ? (end - start - 1) / s + 1 : 0;
            }
            else
            {
                start = Math.Clamp(start, 0, dimension - 1);
                end = Math.Clamp(end, -1, dimension - 1);
                count = start > end ? (start - end - 1) / -s + 1 : 0;
            }
            shape[axis] = (int)count;
            first[axis] = count > 0 ? start : 0;
            step[axis] = s;
        }
        return shape;
    }
}
