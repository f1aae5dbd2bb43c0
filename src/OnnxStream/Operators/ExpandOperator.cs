using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Expand: the input broadcast (NumPy rules, in both directions: a 1 in the shape keeps the
/// input's dimension) against the int64 shape input. Any element type.
/// </summary>
internal sealed class ExpandOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var input = context.Input(0);
        var shape = InferShape(context, input, context.Input(1));
        var output = context.Output(0, input.ElementType, shape, input.Quantization);
        if (output.ElementCount == 0) return;
        var strides = BroadcastStrides(input.Shape, shape);
        AxisHelper.Copy(context, input, 0, strides, output, 0, AxisHelper.Strides(shape), shape);
    }

    /// <summary>The output shape: the broadcast of the input's shape and the shape input's values.</summary>
    public static int[] InferShape(OperatorContext context, Tensor input, Tensor shapeInput)
    {
        if (shapeInput.ElementType != ElementType.Int64)
            throw context.Error($"shape must be int64, not {shapeInput.ElementType}");
        var values = AxisHelper.ReadIndices(context, shapeInput, "shape");
        var target = new int[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] < 0 || values[i] > int.MaxValue)
                throw context.Error($"shape {AxisHelper.Format(values)} has an invalid dimension {values[i]}");
            target[i] = (int)values[i];
        }
        return Broadcasting.Shape(context, input.Shape, target);
    }

    /// <summary>Element strides of <paramref name="input"/> over the axes of <paramref name="shape"/> (0 where it broadcasts).</summary>
    internal static long[] BroadcastStrides(int[] input, int[] shape)
    {
        var own = AxisHelper.Strides(input);
        var strides = new long[shape.Length];
        for (var i = 1; i <= input.Length; i++)
            strides[^i] = input[^i] == 1 && shape[^i] != 1 ? 0 : own[^i];
        return strides;
    }
}
