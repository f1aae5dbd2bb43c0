namespace OnnxStream.Graph.Passes;

/// <summary>
/// Replaces each group normalization as PyTorch exports <c>nn.GroupNorm</c> before opset 18 (<c>Reshape(x, [N, G, -1])
/// → InstanceNormalization(s, b) → Reshape(back to x's shape) → Mul(γ) → Add(β)</c>, γ and β per channel), and the SiLU
/// that usually follows it (<c>Mul(y, Sigmoid(y))</c>), by one <c>FusedGroupNorm</c> node. The exported chain holds two or
/// three activations of x's size at once: a copy of x made by the first Reshape when x lives on (the resnet's shortcut
/// reads it), the normalized result, and Sigmoid's output beside its input. The fused node writes its output once, over
/// x when nothing else reads x. Shapes must be static; every intermediate must have no other consumer.
/// </summary>
/// <remarks>
/// The new node's inputs: 0 x, 1 s [G], 2 b [G], 3 γ, 4 β (as the model stores them); attributes <c>num_groups</c>,
/// <c>epsilon</c>, and <c>activation</c> = <c>silu</c> when the SiLU was absorbed. It takes the place of the last node.
/// </remarks>
internal static class GroupNormFusion
{
    /// <summary>Operator type of the replacement.</summary>
    public const string OpType = "FusedGroupNorm";

    /// <summary>The graph with its group normalizations replaced; itself when there are none.</summary>
    public static ModelGraph Apply(ModelGraph graph) => SubgraphFusion.Apply(graph, TryMatch);

    private static SubgraphFusion.Match? TryMatch(SubgraphFusion graph, GraphNode grouping)
    {
        string Out(GraphNode node) => node.Outputs[0].Name;

        // Reshape(x, [N, G, -1]): x [N, C, ...] with C a multiple of G.
        if (grouping is not { OpType: "Reshape", Inputs: [{ IsWeight: false } x, { IsWeight: true }], Outputs: [{ } grouped] } ||
            !x.HasStaticShape || !grouped.HasStaticShape || x.Shape.Length < 3 || grouped.Shape is not [var n, var groups, var length] ||
            n != x.Shape[0] || groups < 1 || x.Shape[1] % groups != 0 || (long)length * groups != x.Shape[1..].Aggregate(1L, (a, d) => a * d))
            return null;
        var channels = x.Shape[1];
        if (graph.Next(grouping) is not [{ OpType: "InstanceNormalization", Inputs: [_, { IsWeight: true } s, { IsWeight: true } b], Outputs: [_] } norm] ||
            s.Shape is not [var sLength] || sLength != groups || b.Shape is not [var bLength] || bLength != groups)
            return null;
        if (graph.Next(norm) is not [{ OpType: "Reshape", Inputs: [_, _], Outputs: [{ } restored] } ungrouping] || !restored.Shape.SequenceEqual(x.Shape))
            return null;
        if (graph.Only(ungrouping, "Mul") is not { } scale || SubgraphFusion.Other(scale, Out(ungrouping)) is not { } gamma || !PerChannel(gamma, channels, x.Shape.Length))
            return null;
        if (graph.Only(scale, "Add") is not { } shift || SubgraphFusion.Other(shift, Out(scale)) is not { } beta || !PerChannel(beta, channels, x.Shape.Length))
            return null;
        var nodes = new List<GraphNode> { grouping, norm, ungrouping, scale, shift };
        var last = shift;
        // SiLU: Mul(y, Sigmoid(y)), y read by nothing else.
        if (graph.Next(shift) is [var first, var second])
        {
            var (sigmoid, product) = first.OpType == "Sigmoid" ? (first, second) : (second, first);
            if (sigmoid is { OpType: "Sigmoid", Inputs: [_] } && product is { OpType: "Mul" } && SubgraphFusion.IsBinaryOrUnary(product) &&
                SubgraphFusion.Other(product, Out(shift))?.Name == Out(sigmoid) && graph.Only(sigmoid, "Mul") == product)
            {
                nodes.AddRange([sigmoid, product]);
                last = product;
            }
        }
        var attributes = new Dictionary<string, string>
        {
            ["num_groups"] = groups.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["epsilon"] = norm.Attributes.GetString("epsilon", "1e-05"),
        };
        if (last != shift) attributes["activation"] = "silu";
        var fused = new GraphNode($"{last.Name}_{OpType}", OpType, [x, s, b, gamma, beta], last.Outputs,
            new NodeAttributes(attributes), grouping.Source);
        return new SubgraphFusion.Match(nodes, last, fused);
    }

    /// <summary>A weight holding one value per channel that broadcasts along axis 1 of a rank-<paramref name="rank"/> tensor: [C, 1, …] or [1, C, 1, …].</summary>
    private static bool PerChannel(TensorDescriptor tensor, int channels, int rank)
    {
        if (!tensor.IsWeight || tensor.Shape.Length is 0 || tensor.Shape.Length > rank) return false;
        var axis = tensor.Shape.Length - (rank - 1); // where axis 1 of the data falls in the weight's shape
        for (var i = 0; i < tensor.Shape.Length; i++)
            if (tensor.Shape[i] != (i == axis ? channels : 1)) return false;
        return axis >= 0;
    }
}
