using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Flatten: the input as a matrix [product of dims before axis, product of the rest]; axis
/// (default 1) is in [-rank, rank]. Any element type.
/// </summary>
internal sealed class FlattenOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var data = context.Input(0);
        var output = context.Output(0, data.ElementType, InferShape(context, data), data.Quantization);
        if (!context.WrittenOver(0)) AxisHelper.CopyAll(context, data, output);
    }

    /// <inheritdoc />
    /// <remarks>Data that dies here becomes the output as it is, without a copy.</remarks>
    public bool WritesOverInput(int index) => index == 0;

    /// <summary>The output shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor data)
    {
        var rank = data.Shape.Length;
        var axis = context.Attributes.GetInt("axis", 1);
        if (axis < -rank || axis > rank)
            throw context.Error($"axis {axis} is out of range for rank {rank} (valid: {-rank}..{rank})");
        if (axis < 0) axis += rank;
        return [checked((int)AxisHelper.Product(data.Shape, 0, (int)axis)), checked((int)AxisHelper.Product(data.Shape, (int)axis, rank))];
    }
}
