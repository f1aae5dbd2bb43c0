using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>ONNX Concat: joins its inputs along <c>axis</c> (negative counts from the end); any element type.</summary>
internal sealed class ConcatOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        if (!context.Attributes.Has("axis")) throw context.Error("attribute 'axis' is required");
        var inputs = new List<Tensor>(context.InputCount);
        for (var i = 0; i < context.InputCount; i++) inputs.Add(context.Input(i));
        if (inputs.Count == 0) throw context.Error("needs at least one input");
        var shape = InferShape(context, inputs, context.Attributes.GetInt("axis", 0), out var axis);
        var output = context.Output(0, inputs[0].ElementType, shape);
        if (output.ElementCount == 0) return;

        var outputStrides = AxisHelper.Strides(shape);
        long offset = 0;
        foreach (var input in inputs)
        {
            if (input.ElementCount > 0)
                AxisHelper.Copy(context, input, 0, AxisHelper.Strides(input.Shape), output, offset, outputStrides, input.Shape);
            offset += input.Shape[axis] * outputStrides[axis];
        }
    }

    /// <summary>
    /// The output shape: the inputs' common shape with the sizes along <paramref name="axisAttribute"/>
    /// summed. All inputs must have the same rank and element type.
    /// </summary>
    public static int[] InferShape(OperatorContext context, IReadOnlyList<Tensor> inputs, long axisAttribute, out int axis)
    {
        var first = inputs[0];
        var rank = first.Shape.Length;
        if (rank == 0) throw context.Error("cannot concatenate scalars");
        axis = AxisHelper.NormalizeAxis(context, axisAttribute, rank);
        var shape = (int[])first.Shape.Clone();
        long total = 0;
        for (var i = 0; i < inputs.Count; i++)
        {
            var input = inputs[i];
            if (input.ElementType != first.ElementType)
                throw context.Error($"input {i} is {input.ElementType} but input 0 is {first.ElementType}");
            if (input.Shape.Length != rank)
                throw context.Error($"input {i} has shape {AxisHelper.Format(input.Shape)}, rank {input.Shape.Length}; input 0 has {AxisHelper.Format(first.Shape)}, rank {rank}");
            for (var d = 0; d < rank; d++)
                if (d != axis && input.Shape[d] != first.Shape[d])
                    throw context.Error($"input {i} has shape {AxisHelper.Format(input.Shape)}, input 0 {AxisHelper.Format(first.Shape)}: they differ on axis {d}, not only on the concatenation axis {axis}");
            total += input.Shape[axis];
        }
        if (total > int.MaxValue) throw context.Error($"the output would have {total} elements along axis {axis}");
        shape[axis] = (int)total;
        return shape;
    }
}
