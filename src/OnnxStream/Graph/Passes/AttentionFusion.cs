using System.Globalization;
using OnnxStream.Runtime;

namespace OnnxStream.Graph.Passes;

/// <summary>
/// Replaces each attention subgraph by one <c>SlicedAttention</c> or <c>FusedAttention</c> node. The subgraph is
/// <c>MatMul(Q, K') → [Mul|Div by a scalar weight] → [Add mask] → Softmax(last axis) → MatMul(·, V)</c>, where the
/// mask Add may sit between two Reshapes (CLIP's export views the scores as [batch, heads, Lq, Lk] to add its
/// causal mask) and K' may come from a Transpose of the last two axes of K (diffusers' export), which is absorbed.
/// This covers the exports of diffusers' attention (Mul or Div scale), of CLIP (causal mask Add) and of
/// scaled_dot_product_attention (its scale is applied to Q and K before the MatMul; optional mask Add). Every
/// intermediate must have no other consumer and not be a graph output; anything else stays as it is.
/// </summary>
/// <remarks>
/// The new node's inputs: 0 Q, 1 K' (or K when attribute <c>k_transposed</c> is 1), 2 V, 3 the scale (optional),
/// 4 the additive mask (optional), 5 and 6 the shapes of the Reshapes around the mask Add (optional); attributes
/// <c>scale_divides</c> (1 for Div), <c>k_transposed</c>, <c>softmax_axis</c>, <c>mask_view_allowzero</c>, <c>scores_allowzero</c>
/// and, for <c>SlicedAttention</c>, <c>slices</c>. It takes the place of the second MatMul.
/// </remarks>
internal static class AttentionFusion
{
    /// <summary>Operator type of the sliced replacement.</summary>
    public const string SlicedOpType = "SlicedAttention";

    /// <summary>Operator type of the memory-efficient replacement.</summary>
    public const string FusedOpType = "FusedAttention";

    /// <summary>The graph with its attention subgraphs replaced for <paramref name="mode"/>; itself when none is found or the mode is plain.</summary>
    public static ModelGraph Apply(ModelGraph graph, AttentionMode mode, int slices)
    {
        if (mode == AttentionMode.Plain) return graph;
        if (mode == AttentionMode.Sliced && slices < 1)
            throw new ArgumentOutOfRangeException(nameof(slices), slices, "Attention slices must be at least 1.");
        var opType = mode == AttentionMode.Sliced ? SlicedOpType : FusedOpType;

        var producers = new Dictionary<string, GraphNode>(StringComparer.Ordinal);
        var uses = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            foreach (var output in node.Outputs) producers[output.Name] = node;
            foreach (var input in node.Inputs)
                if (input is { IsWeight: false }) uses[input.Name] = uses.GetValueOrDefault(input.Name) + 1;
        }
        foreach (var output in graph.Outputs) uses[output.Name] = uses.GetValueOrDefault(output.Name) + 1;

        var removed = new HashSet<GraphNode>(ReferenceEqualityComparer.Instance);
        var replacements = new Dictionary<GraphNode, GraphNode>(ReferenceEqualityComparer.Instance);
        var consumerOf = FirstConsumers(graph.Nodes);
        foreach (var softmax in graph.Nodes)
        {
            if (softmax.OpType != "Softmax" || !MayBeLastAxis(softmax)) continue;
            if (!TryMatch(softmax, producers, uses, consumerOf, out var match) || match.Nodes.Any(removed.Contains)) continue;
            foreach (var node in match.Nodes) removed.Add(node);
            replacements[match.Output] = Replacement(match, opType, slices);
        }
        if (replacements.Count == 0) return graph;
        var nodes = graph.Nodes.Where(n => !removed.Contains(n) || replacements.ContainsKey(n))
            .Select(n => replacements.GetValueOrDefault(n, n)).ToList();
        return graph with { Nodes = nodes };
    }

    /// <summary>The nodes of one attention subgraph and the tensors the replacement reads.</summary>
    private sealed record Match(List<GraphNode> Nodes, GraphNode Softmax, GraphNode Output, ScoreSource Scores, TensorDescriptor V, TensorDescriptor? Mask,
        GraphNode? MaskView, GraphNode? ScoresReshape);

    /// <summary>What the scores are computed from: Q·K' (K' = Kᵀ when <c>KTransposed</c>), times or divided by <c>Scale</c>.</summary>
    private readonly record struct ScoreSource(TensorDescriptor Q, TensorDescriptor K, bool KTransposed, TensorDescriptor? Scale, bool ScaleDivides);

    private static bool TryMatch(GraphNode softmax, Dictionary<string, GraphNode> producers, Dictionary<string, int> uses,
        Dictionary<string, GraphNode> consumerOf, out Match match)
    {
        match = null!;
        // Walks up from the Softmax through single-use intermediates: the node producing `tensor`, if it is one.
        GraphNode? Up(TensorDescriptor? tensor) =>
            tensor is { IsWeight: false } && uses.GetValueOrDefault(tensor.Name) == 1 && producers.TryGetValue(tensor.Name, out var p)
                && p.Outputs.Length == 1 ? p : null;

        // `scores` = MatMul(Q, K') [then Mul or Div by a scalar weight]: the nodes (added to `nodes`) and operands.
        bool Scores(TensorDescriptor? scores, List<GraphNode> nodes, out ScoreSource source)
        {
            source = default;
            var node = Up(scores);
            TensorDescriptor? scale = null;
            if (node is { OpType: "Mul" or "Div" } && IsBinary(node))
            {
                var side = node.OpType == "Mul" && IsScalarWeight(node.Inputs[0]!) ? 1 : 0;
                if (!IsScalarWeight(node.Inputs[1 - side]!)) return false;
                scale = node.Inputs[1 - side];
                source = source with { Scale = scale, ScaleDivides = node.OpType == "Div" };
                nodes.Add(node);
                node = Up(node.Inputs[side]);
            }
            if (node is not { OpType: "MatMul" } || !IsBinary(node)) return false;
            nodes.Add(node);
            source = source with { Q = node.Inputs[0]!, K = node.Inputs[1]! };
            if (Up(source.K) is { OpType: "Transpose" } transpose && transpose.Inputs is [{ } untransposed] && SwapsLastTwoAxes(transpose))
            {
                nodes.Add(transpose);
                source = source with { K = untransposed, KTransposed = true };
            }
            return true;
        }

        if (softmax.Inputs.Length != 1 || softmax.Outputs.Length != 1 || uses.GetValueOrDefault(softmax.Outputs[0].Name) != 1) return false;
        if (!consumerOf.TryGetValue(softmax.Outputs[0].Name, out var matmulPv) || matmulPv.OpType != "MatMul" || !IsBinary(matmulPv) ||
            matmulPv.Inputs[0]!.Name != softmax.Outputs[0].Name || matmulPv.Inputs[1]!.Name == softmax.Outputs[0].Name)
            return false;
        List<GraphNode> Start() => [softmax, matmulPv];

        var chain = Start();
        if (Scores(softmax.Inputs[0], chain, out var plain))
        {
            match = new Match(chain, softmax, matmulPv, plain, matmulPv.Inputs[1]!, null, null, null);
            return true;
        }

        // Scores + mask, optionally viewed through a Reshape for the Add and reshaped back after it.
        var node = Up(softmax.Inputs[0]);
        var scoresReshape = node is { OpType: "Reshape", Inputs: [not null, not null] } ? node : null;
        if (scoresReshape is not null) node = Up(scoresReshape.Inputs[0]);
        if (node is not { OpType: "Add" } || !IsBinary(node)) return false;
        var add = node;
        for (var side = 0; side < 2; side++)
        {
            chain = Start();
            chain.Add(add);
            var scores = add.Inputs[side];
            GraphNode? maskView = null;
            if (scoresReshape is not null)
            {
                chain.Add(scoresReshape);
                maskView = Up(scores);
                if (maskView is not { OpType: "Reshape", Inputs: [not null, not null] }) continue;
                chain.Add(maskView);
                scores = maskView.Inputs[0];
            }
            if (!Scores(scores, chain, out var source)) continue;
            match = new Match(chain, softmax, matmulPv, source, matmulPv.Inputs[1]!, add.Inputs[1 - side], maskView, scoresReshape);
            return true;
        }
        return false;
    }

    private static GraphNode Replacement(Match match, string opType, int slices)
    {
        var attributes = new Dictionary<string, string>
        {
            ["scale_divides"] = match.Scores.ScaleDivides ? "1" : "0",
            ["k_transposed"] = match.Scores.KTransposed ? "1" : "0",
            ["softmax_axis"] = match.Softmax.Attributes.GetInt("axis", -1).ToString(CultureInfo.InvariantCulture),
        };
        if (match.MaskView is not null)
        {
            attributes["mask_view_allowzero"] = match.MaskView.Attributes.GetInt("allowzero", 0).ToString(CultureInfo.InvariantCulture);
            attributes["scores_allowzero"] = match.ScoresReshape!.Attributes.GetInt("allowzero", 0).ToString(CultureInfo.InvariantCulture);
        }
        if (opType == SlicedOpType) attributes["slices"] = slices.ToString(CultureInfo.InvariantCulture);
        TensorDescriptor?[] inputs =
            [match.Scores.Q, match.Scores.K, match.V, match.Scores.Scale, match.Mask, match.MaskView?.Inputs[1], match.ScoresReshape?.Inputs[1]];
        return new GraphNode($"{match.Output.Name}_{opType}", opType, inputs, match.Output.Outputs, new NodeAttributes(attributes),
            match.Output.Source);
    }

    /// <summary>For each activation, its first consumer (enough: the chain's tensors are checked to have one).</summary>
    private static Dictionary<string, GraphNode> FirstConsumers(IReadOnlyList<GraphNode> nodes)
    {
        var consumers = new Dictionary<string, GraphNode>(StringComparer.Ordinal);
        foreach (var node in nodes)
            foreach (var input in node.Inputs)
                if (input is { IsWeight: false }) consumers.TryAdd(input.Name, node);
        return consumers;
    }

    private static bool IsBinary(GraphNode node) =>
        node.Inputs.Length == 2 && node.Inputs[0] is not null && node.Inputs[1] is not null && node.Outputs.Length == 1;

    private static bool IsScalarWeight(TensorDescriptor tensor) =>
        tensor.IsWeight && tensor.Shape.All(d => d == 1) && tensor.WeightType is Tensors.ElementType.Float32 or Tensors.ElementType.Float16;

    /// <summary>
    /// Softmax over the last axis: axis -1 (also the default), rank-1 when the input's rank is known, or any other
    /// non-negative axis when it is not (the replacement checks it against the scores' rank when it runs).
    /// </summary>
    private static bool MayBeLastAxis(GraphNode softmax)
    {
        var axis = softmax.Attributes.GetInt("axis", -1);
        if (axis == -1) return true;
        var rank = softmax.Inputs.Length == 1 && softmax.Inputs[0] is { Shape.Length: > 0 } x ? x.Shape.Length : 0;
        return rank > 0 ? axis == rank - 1 : axis >= 0;
    }

    private static bool SwapsLastTwoAxes(GraphNode transpose)
    {
        var perm = transpose.Attributes.GetInts("perm");
        if (perm is null || perm.Length < 2) return false;
        for (var i = 0; i < perm.Length - 2; i++)
            if (perm[i] != i) return false;
        return perm[^2] == perm.Length - 1 && perm[^1] == perm.Length - 2;
    }
}
