using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Squeeze: removes the size-1 dimensions at <c>axes</c> (negative count from the end; a listed
/// dimension that is not 1 is an error), or all size-1 dimensions when axes is not given or empty (as
/// ONNX Runtime). Opset 13+:
/// axes is an optional int64 input; before: an attribute. Any element type.
/// </summary>
internal sealed class SqueezeOperator : IOperator
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
        var axes = UnsqueezeOperator.Axes(context);
        var removed = new bool[rank];
        if (axes is null || axes.Length == 0)
            for (var i = 0; i < rank; i++) removed[i] = data.Shape[i] == 1;
        else
            foreach (var axis in axes)
            {
                var normalized = AxisHelper.NormalizeAxis(context, axis, rank, "axes value");
                if (removed[normalized]) throw context.Error($"axes {AxisHelper.Format(axes)} repeat axis {normalized}");
                if (data.Shape[normalized] != 1)
                    throw context.Error($"cannot squeeze axis {normalized} of shape {AxisHelper.Format(data.Shape)}: its size is not 1");
                removed[normalized] = true;
            }
        return data.Shape.Where((_, i) => !removed[i]).ToArray();
    }
}
