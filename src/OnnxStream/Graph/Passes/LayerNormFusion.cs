using System.Globalization;

namespace OnnxStream.Graph.Passes;

/// <summary>
/// Replaces each layer normalization over the last axis as PyTorch exports <c>nn.LayerNorm</c> before opset 17
/// (<c>m = ReduceMean(x); d = Sub(x, m); v = ReduceMean(Pow(d, 2)); y = Div(d, Sqrt(Add(v, ε))) · γ + β</c>, the
/// ReduceMeans over the last axis with kept dimensions, γ and β [features]) by one ONNX <c>LayerNormalization</c> node.
/// The exported chain holds x, d and d² at once (three activations of x's size: 15 MiB at the SD 1.5 UNet's 64×64 level)
/// and costs nine operations; CLIP's text encoder has 25 of them, the UNet 48. Every intermediate must have no other
/// consumer.
/// </summary>
internal static class LayerNormFusion
{
    /// <summary>The graph with its layer normalizations replaced; itself when there are none.</summary>
    public static ModelGraph Apply(ModelGraph graph) => SubgraphFusion.Apply(graph, TryMatch);

    private static SubgraphFusion.Match? TryMatch(SubgraphFusion graph, GraphNode mean)
    {
        string Out(GraphNode node) => node.Outputs[0].Name;
        var other = SubgraphFusion.Other;

        if (mean is not { OpType: "ReduceMean", Inputs: [{ IsWeight: false, HasStaticShape: true } x], Outputs: [_] } || x.Shape.Length < 1 || !OverLastAxis(mean, x.Shape.Length))
            return null;
        var features = x.Shape[^1];
        if (graph.Next(mean) is not [{ OpType: "Sub", Inputs: [{ } minuend, { } subtrahend] } sub] || minuend.Name != x.Name || subtrahend.Name != Out(mean))
            return null;
        if (graph.Next(sub) is not [var first, var second]) return null;
        var (pow, div) = first.OpType == "Pow" ? (first, second) : (second, first);
        if (pow is not { OpType: "Pow", Inputs: [_, var exponent] } || pow.Inputs[0]!.Name != Out(sub) || SubgraphFusion.ScalarValue(exponent) != 2)
            return null;
        if (graph.Only(pow, "ReduceMean") is not { } variance || !OverLastAxis(variance, x.Shape.Length)) return null;
        if (graph.Only(variance, "Add") is not { } plusEpsilon || SubgraphFusion.ScalarValue(other(plusEpsilon, Out(variance))) is not { } epsilon) return null;
        if (graph.Only(plusEpsilon, "Sqrt") is not { } sqrt || graph.Only(sqrt, "Div") != div || div.Inputs[0]!.Name != Out(sub) || div.Inputs[1]!.Name != Out(sqrt))
            return null;
        if (graph.Only(div, "Mul") is not { } scale || other(scale, Out(div)) is not { IsWeight: true, Shape: [var gammaLength] } gamma || gammaLength != features)
            return null;
        if (graph.Only(scale, "Add") is not { } shift || other(shift, Out(scale)) is not { IsWeight: true, Shape: [var betaLength] } beta || betaLength != features)
            return null;
        var attributes = new Dictionary<string, string>
        {
            ["axis"] = "-1",
            ["epsilon"] = ((float)epsilon).ToString("R", CultureInfo.InvariantCulture),
        };
        var fused = new GraphNode($"{shift.Name}_LayerNormalization", "LayerNormalization", [x, gamma, beta], shift.Outputs,
            new NodeAttributes(attributes), mean.Source);
        return new SubgraphFusion.Match([mean, sub, pow, variance, plusEpsilon, sqrt, div, scale, shift], shift, fused);
    }

    /// <summary>Whether a one-input ReduceMean reduces only the last of <paramref name="rank"/> axes and keeps it (opset &lt; 18: attribute axes).</summary>
    private static bool OverLastAxis(GraphNode reduce, int rank) =>
        reduce.Inputs.Length == 1 && reduce.Attributes.GetInt("keepdims", 1) == 1 &&
        reduce.Attributes.GetInts("axes") is [var axis] && (axis == -1 || axis == rank - 1);
}
