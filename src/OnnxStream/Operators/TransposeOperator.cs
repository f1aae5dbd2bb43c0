using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Transpose: permutes the axes by attribute <c>perm</c> (default: reversed). Output axis i is
/// input axis perm[i]. Tiled (cache-aware) when the innermost axis moves; any element type.
/// </summary>
internal sealed class TransposeOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var data = context.Input(0);
        var shape = InferShape(context, data.Shape, context.Attributes.GetInts("perm"), out var perm);
        var output = context.Output(0, data.ElementType, shape);
        if (output.ElementCount == 0) return;
        var inputStrides = AxisHelper.Strides(data.Shape);
        var sourceStrides = new long[perm.Length];
        for (var i = 0; i < perm.Length; i++) sourceStrides[i] = inputStrides[perm[i]];
        AxisHelper.Copy(context, data, 0, sourceStrides, output, 0, AxisHelper.Strides(shape), shape);
    }

    /// <summary>The output shape for <paramref name="permAttribute"/> (null: reversed axes), and the checked permutation.</summary>
    public static int[] InferShape(OperatorContext context, int[] inputShape, long[]? permAttribute, out int[] perm)
    {
        var rank = inputShape.Length;
        if (permAttribute is null)
        {
            perm = new int[rank];
            for (var i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        }
        else
        {
            if (permAttribute.Length != rank)
                throw context.Error($"perm {AxisHelper.Format(permAttribute)} has {permAttribute.Length} axes but the input {AxisHelper.Format(inputShape)} has rank {rank}");
            perm = new int[rank];
            var seen = new bool[rank];
            for (var i = 0; i < rank; i++)
            {
                var axis = permAttribute[i];
                if (axis < 0 || axis >= rank || seen[axis])
                    throw context.Error($"perm {AxisHelper.Format(permAttribute)} is not a permutation of 0..{rank - 1}");
                seen[axis] = true;
                perm[i] = (int)axis;
            }
        }
        var shape = new int[rank];
        for (var i = 0; i < rank; i++) shape[i] = inputShape[perm[i]];
        return shape;
    }
}
