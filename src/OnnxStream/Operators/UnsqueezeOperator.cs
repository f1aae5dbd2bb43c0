using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Unsqueeze: inserts size-1 dimensions at <c>axes</c> (positions in the output; negative count
/// from the output's end). Opset 13+: axes is an int64 input; before: an attribute. Any element type.
/// </summary>
internal sealed class UnsqueezeOperator : IOperator
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
        var axes = Axes(context) ?? throw context.Error("needs axes (the second input, or the attribute before opset 13)");
        var rank = data.Shape.Length + axes.Length;
        var inserted = new bool[rank];
        foreach (var axis in axes)
        {
            var normalized = AxisHelper.NormalizeAxis(context, axis, rank, "axes value");
            if (inserted[normalized]) throw context.Error($"axes {AxisHelper.Format(axes)} repeat axis {normalized}");
            inserted[normalized] = true;
        }
        var shape = new int[rank];
        for (int i = 0, j = 0; i < rank; i++) shape[i] = inserted[i] ? 1 : data.Shape[j++];
        return shape;
    }

    /// <summary>The axes from input 1 (opset 13+) or attribute <c>axes</c>; null when neither is given.</summary>
    internal static long[]? Axes(OperatorContext context)
    {
        var input = context.OptionalInput(1);
        var attribute = context.Attributes.GetInts("axes");
        if (input is not null && attribute is not null) throw context.Error("has axes both as an input and as an attribute");
        if (input is null) return attribute;
        if (input.ElementType != ElementType.Int64) throw context.Error($"axes must be int64, not {input.ElementType}");
        return AxisHelper.ReadIndices(context, input, "axes");
    }
}
