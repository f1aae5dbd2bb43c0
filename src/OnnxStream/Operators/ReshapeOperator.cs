using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Reshape: the data with the shape given by the int64 <c>shape</c> input, where 0 copies the
/// input's dimension (unless attribute <c>allowzero</c> is 1) and one -1 is inferred. The output is a
/// copy, or the data's own memory when nothing after this operation reads the data. Any element type.
/// </summary>
internal sealed class ReshapeOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var data = context.Input(0);
        var requested = AxisHelper.ReadIndices(context, context.Input(1), "input 'shape'");
        var shape = InferShape(context, data.Shape, requested, context.Attributes.GetInt("allowzero", 0) != 0);
        var output = context.Output(0, data.ElementType, shape);
        if (output.ElementCount > 0 && !context.WrittenOver(0)) AxisHelper.CopyAll(context, data, output);
    }

    /// <inheritdoc />
    /// <remarks>Data that dies here becomes the output as it is: a reshape without a copy.</remarks>
    public bool WritesOverInput(int index) => index == 0;

    /// <summary>The output shape for <paramref name="requested"/> (ONNX's 0 and -1 rules).</summary>
    public static int[] InferShape(OperatorContext context, int[] inputShape, long[] requested, bool allowZero)
    {
        var shape = new int[requested.Length];
        var inferred = -1;
        long known = 1;
        var hasZero = false;
        for (var i = 0; i < requested.Length; i++)
        {
            var value = requested[i];
            if (value == -1)
            {
                if (inferred >= 0) throw context.Error($"shape {AxisHelper.Format(requested)} has more than one -1");
                inferred = i;
                continue;
            }
            if (value == 0 && !allowZero)
            {
                if (i >= inputShape.Length)
                    throw context.Error($"shape {AxisHelper.Format(requested)} copies dimension {i} (0) but the input {AxisHelper.Format(inputShape)} has rank {inputShape.Length}");
                value = inputShape[i];
            }
            if (value < 0 || value > int.MaxValue)
                throw context.Error($"shape {AxisHelper.Format(requested)} has an invalid dimension {requested[i]}");
            shape[i] = (int)value;
            hasZero |= value == 0;
            known *= value;
        }
        var count = AxisHelper.Product(inputShape, 0, inputShape.Length);
        if (inferred >= 0)
        {
            if (hasZero)
                throw context.Error($"shape {AxisHelper.Format(requested)} for input {AxisHelper.Format(inputShape)} has -1 and a zero dimension: -1 cannot be inferred");
            if (count % known != 0)
                throw context.Error($"cannot reshape {AxisHelper.Format(inputShape)} ({count} elements) to {AxisHelper.Format(requested)}: {count} is not a multiple of {known}");
            shape[inferred] = checked((int)(count / known));
            known *= shape[inferred];
        }
        if (known != count)
            throw context.Error($"cannot reshape {AxisHelper.Format(inputShape)} ({count} elements) to {AxisHelper.Format(requested)} ({known} elements)");
        return shape;
    }
}
