using System.Globalization;

namespace OnnxStream.Graph.Passes;

/// <summary>
/// Replaces each GEGLU projection of a feed-forward block (diffusers' <c>GEGLU</c>: <c>h, g = proj(x).chunk(2, -1);
/// h · gelu(g)</c> with the exact GELU) by one <c>FusedGeglu</c> node, which never holds the projection's output (twice
/// the size of the result: 40 MiB per SD 1.5 UNet block at a 64×64 latent) nor its halves. The exported subgraph is
/// <c>p = Add(MatMul(x, W), b)</c>, <c>h = Slice(p, 0, H)</c>, <c>g = Slice(p, H, 2H)</c> on the last axis, then
/// <c>Mul(h, Mul(Mul(g, Add(Erf(Div(g, c)), 1)), 0.5))</c> with c ≈ √2, operands of commutative operations in either
/// order; W [K, 2H] and b [2H] are weights and every intermediate has no consumer outside the subgraph.
/// </summary>
/// <remarks>
/// The new node's inputs: 0 x, 1 W, 2 b; attribute <c>erf_divisor</c> is c as the model stores it (√2 rounded to
/// float16 in fp16 folders). It takes the place of the last Mul.
/// </remarks>
internal static class GegluFusion
{
    /// <summary>Operator type of the replacement.</summary>
    public const string OpType = "FusedGeglu";

    /// <summary>The graph with its GEGLU projections replaced; itself when there are none.</summary>
    public static ModelGraph Apply(ModelGraph graph) => SubgraphFusion.Apply(graph, TryMatch);

    private static SubgraphFusion.Match? TryMatch(SubgraphFusion graph, GraphNode matmul)
    {
        string Out(GraphNode node) => node.Outputs[0].Name;
        var other = SubgraphFusion.Other;

        if (matmul is not { OpType: "MatMul", Inputs: [{ IsWeight: false } x, { IsWeight: true, Shape: [var k, var twoH] } w] } || twoH % 2 != 0 || k < 1)
            return null;
        var h = twoH / 2;
        if (graph.Only(matmul, "Add") is not { } add || other(add, Out(matmul)) is not { IsWeight: true, Shape: [var biasLength] } b || biasLength != twoH)
            return null;
        if (graph.Next(add) is not [{ OpType: "Slice" } s0, { OpType: "Slice" } s1]) return null;
        if (SliceRange(s1, Out(add)) == (0, h)) (s0, s1) = (s1, s0);
        if (SliceRange(s0, Out(add)) != (0, h) || SliceRange(s1, Out(add)) is not (var start, var end) || start != h || end < twoH)
            return null;
        // g feeds Div and the Mul; h feeds the last Mul.
        var gate = Out(s1);
        if (graph.Next(s1) is not [var first, var second]) return null;
        var (div, mul) = first.OpType == "Div" ? (first, second) : (second, first);
        if (div is not { OpType: "Div" } || !SubgraphFusion.IsBinaryOrUnary(div) || div.Inputs[0]!.Name != gate || SubgraphFusion.ScalarValue(div.Inputs[1]) is not { } divisor ||
            Math.Abs(divisor - Math.Sqrt(2)) > 1e-3)
            return null;
        if (graph.Only(div, "Erf") is not { } erf || graph.Only(erf, "Add") is not { } plusOne || SubgraphFusion.ScalarValue(other(plusOne, Out(erf))) != 1) return null;
        if (mul is not { OpType: "Mul" } || !SubgraphFusion.IsBinaryOrUnary(mul) || other(mul, gate)?.Name != Out(plusOne) || graph.Only(plusOne, "Mul") != mul)
            return null;
        if (graph.Only(mul, "Mul") is not { } half || SubgraphFusion.ScalarValue(other(half, Out(mul))) != 0.5) return null;
        if (graph.Only(half, "Mul") is not { } output || graph.Only(s0, "Mul") != output || other(output, Out(half))?.Name != Out(s0)) return null;
        var attributes = new Dictionary<string, string> { ["erf_divisor"] = ((float)divisor).ToString("R", CultureInfo.InvariantCulture) };
        var fused = new GraphNode($"{output.Name}_{OpType}", OpType, [x, w, b], output.Outputs, new NodeAttributes(attributes), output.Source);
        return new SubgraphFusion.Match([matmul, add, s0, s1, div, erf, plusOne, mul, half, output], output, fused);
    }

    /// <summary>
    /// [start, end) of a Slice of <paramref name="data"/> along its last axis by constant starts/ends/axes (steps absent or
    /// 1); null for any other Slice.
    /// </summary>
    private static (long Start, long End)? SliceRange(GraphNode slice, string data)
    {
        if (slice.Outputs.Length != 1 || slice.Inputs is not [{ } input, { } starts, { } ends, { } axes, ..] || input.Name != data ||
            slice.Inputs.Length > 5 || (slice.Inputs.Length == 5 && slice.Inputs[4] is { } steps && SubgraphFusion.Values(steps) is not [1]))
            return null;
        var rank = input.Shape.Length;
        return SubgraphFusion.Values(starts) is [var start] && SubgraphFusion.Values(ends) is [var end] && SubgraphFusion.Values(axes) is [var axis] && (axis == -1 || rank > 0 && axis == rank - 1)
            ? ((long)start, (long)end)
            : null;
    }
}
