using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// A group normalization with its per-channel affine and, with attribute <c>activation</c> = <c>silu</c>, the SiLU after it
/// (see <see cref="Graph.Passes.GroupNormFusion"/>): x [N,C,...], s and b [G] (the exported InstanceNormalization's), γ and β
/// per channel → y = silu(((x − mean) / sqrt(var + epsilon) · s[g] + b[g]) · γ[c] + β[c]) over each group of C/G channels.
/// The output is written once, over x when x dies here. float32, and float16 through float32.
/// </summary>
internal sealed class FusedGroupNormOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var groups = (int)context.Attributes.GetInt("num_groups", 0);
        GroupNormalizationOperator.CheckFloat(context, x, "x");
        if (x.Shape.Length < 2 || groups < 1 || x.Shape[1] % groups != 0)
            throw context.Error($"x {AxisHelper.Format(x.Shape)} does not split into num_groups={groups} groups of channels");
        var channels = x.Shape[1];
        var activation = context.Attributes.GetString("activation", "");
        if (activation is not ("" or "silu")) throw context.Error($"activation '{activation}' is not supported (only silu)");
        var groupScale = Values(context, 1, "s", groups);
        var groupBias = Values(context, 2, "b", groups);
        var gamma = Values(context, 3, "gamma", channels);
        var beta = Values(context, 4, "beta", channels);
        // ((n·s + b)·γ + β) = n·(s·γ) + (b·γ + β), per channel.
        var groupChannels = channels / groups;
        for (var c = 0; c < channels; c++)
        {
            beta[c] += groupBias[c / groupChannels] * gamma[c];
            gamma[c] *= groupScale[c / groupChannels];
        }
        var output = context.Output(0, x.ElementType, (int[])x.Shape.Clone());
        if (output.ElementCount == 0) return;
        GroupNormalizationOperator.Normalize(context, x, output, groups, gamma, beta, context.Attributes.GetFloat("epsilon", 1e-5f), activation == "silu");
    }

    /// <summary>Input <paramref name="index"/> as <paramref name="count"/> floats (a small managed array).</summary>
    private static float[] Values(OperatorContext context, int index, string name, int count)
    {
        var tensor = context.Input(index);
        GroupNormalizationOperator.CheckFloat(context, tensor, name);
        if (tensor.ElementCount != count)
            throw context.Error($"{name} {AxisHelper.Format(tensor.Shape)} must hold {count} values");
        return GroupNormalizationOperator.ChannelValues(context, tensor, name, count, count);
    }

    /// <inheritdoc />
    /// <remarks>Each group's statistics are taken before any of its elements is written.</remarks>
    public bool WritesOverInput(int index) => index == 0;
}
