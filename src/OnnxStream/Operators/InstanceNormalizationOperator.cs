using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX InstanceNormalization (opset 6+): each (n, c) plane of X [N,C,...] is normalized over its spatial
/// positions, y = scale[c]·(x − mean) / sqrt(var + epsilon) + B[c] (biased variance, epsilon default 1e-5).
/// scale and B are [C]. Any rank from 2 (a spatial size of 1 gives y = B) up; rank 3 is the GroupNorm
/// decomposition of the SD models (Reshape to [N,groups,-1], then InstanceNormalization with scale and B
/// of size groups). float32, and float16 through float32. Runs <see cref="GroupNormalizationOperator"/>'s
/// engine with groups of one channel.
/// </summary>
internal sealed class InstanceNormalizationOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var scale = context.Input(1);
        var bias = context.Input(2);
        var shape = InferShape(context, x, scale, bias);
        var output = context.Output(0, x.ElementType, shape);
        if (output.ElementCount == 0) return;
        var channels = shape[1];
        var epsilon = context.Attributes.GetFloat("epsilon", 1e-5f);
        GroupNormalizationOperator.Normalize(context, x, output, channels,
            GroupNormalizationOperator.ChannelValues(context, scale, "scale", channels, channels),
            GroupNormalizationOperator.ChannelValues(context, bias, "B", channels, channels), epsilon);
    }

    /// <summary>Checks the inputs; the output has X's shape.</summary>
    internal static int[] InferShape(OperatorContext context, Tensor x, Tensor scale, Tensor bias)
    {
        GroupNormalizationOperator.CheckFloat(context, x, "input");
        if (x.Shape.Length < 2) throw context.Error($"input must be [N,C,...] (rank 2 or more), not {x}");
        var channels = x.Shape[1];
        foreach (var (tensor, name) in new[] { (scale, "scale"), (bias, "B") })
        {
            GroupNormalizationOperator.CheckFloat(context, tensor, name);
            if (tensor.Shape.Length != 1 || tensor.Shape[0] != channels)
                throw context.Error($"{name} must be [C]=[{channels}] for input {AxisHelper.Format(x.Shape)}, not {AxisHelper.Format(tensor.Shape)}");
        }
        return (int[])x.Shape.Clone();
    }
}
