using OnnxStream.Memory;
using OnnxStream.Tensors;
using OnnxStream.Weights;

namespace OnnxStream.Graph.Passes;

/// <summary>
/// What the fusion passes that match a chain of operations share: each tensor's consumers, and the rewrite that
/// replaces every matched subgraph by one node placed where its last node was.
/// </summary>
internal sealed class SubgraphFusion
{
    private readonly Dictionary<string, List<GraphNode>> _consumers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _graphOutputs;

    private SubgraphFusion(ModelGraph graph)
    {
        foreach (var node in graph.Nodes)
            foreach (var input in node.Inputs)
                if (input is { IsWeight: false })
                {
                    if (!_consumers.TryGetValue(input.Name, out var list)) _consumers[input.Name] = list = [];
                    list.Add(node);
                }
        _graphOutputs = graph.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>One matched subgraph: its nodes, the one the replacement takes the place of, and the replacement.</summary>
    public sealed record Match(IReadOnlyList<GraphNode> Nodes, GraphNode Last, GraphNode Replacement);

    /// <summary>
    /// The graph with the subgraphs <paramref name="tryMatch"/> finds (tried from every node, in order; a match that
    /// overlaps an earlier one is dropped) replaced; itself when there are none.
    /// </summary>
    public static ModelGraph Apply(ModelGraph graph, Func<SubgraphFusion, GraphNode, Match?> tryMatch)
    {
        var fusion = new SubgraphFusion(graph);
        var removed = new HashSet<GraphNode>(ReferenceEqualityComparer.Instance);
        var replacements = new Dictionary<GraphNode, GraphNode>(ReferenceEqualityComparer.Instance);
        foreach (var node in graph.Nodes)
        {
            if (tryMatch(fusion, node) is not { } match || match.Nodes.Any(removed.Contains)) continue;
            foreach (var matched in match.Nodes) removed.Add(matched);
            replacements[match.Last] = match.Replacement;
        }
        if (replacements.Count == 0) return graph;
        var nodes = graph.Nodes.Where(n => !removed.Contains(n) || replacements.ContainsKey(n))
            .Select(n => replacements.GetValueOrDefault(n, n)).ToList();
        return graph with { Nodes = nodes };
    }

    /// <summary>The consumers of a node's only output, when they are all there is to it (it is not a graph output); else none.</summary>
    public List<GraphNode> Next(GraphNode node) =>
        node.Outputs.Length == 1 && !_graphOutputs.Contains(node.Outputs[0].Name) ? _consumers.GetValueOrDefault(node.Outputs[0].Name, []) : [];

    /// <summary>The only consumer of a node's only output when it is a one-output <paramref name="opType"/> node of one or two inputs.</summary>
    public GraphNode? Only(GraphNode node, string opType) =>
        Next(node) is [{ } next] && next.OpType == opType && IsBinaryOrUnary(next) ? next : null;

    /// <summary>A node of one output and one or two present inputs.</summary>
    public static bool IsBinaryOrUnary(GraphNode node) =>
        node.Outputs.Length == 1 && node.Inputs.Length is 1 or 2 && node.Inputs.All(i => i is not null);

    /// <summary>The operand of binary <paramref name="node"/> other than the tensor named <paramref name="name"/>, or null.</summary>
    public static TensorDescriptor? Other(GraphNode node, string name) =>
        node.Inputs[0]!.Name == name ? node.Inputs[1] : node.Inputs[1]!.Name == name ? node.Inputs[0] : null;

    /// <summary>The value of a one-element float weight, or null.</summary>
    public static double? ScalarValue(TensorDescriptor? weight) => weight is not null && Values(weight) is [var value] ? value : null;

    /// <summary>The values of a small weight (at most 16 elements of float32, float16, int64 or int32), or null.</summary>
    public static double[]? Values(TensorDescriptor weight)
    {
        if (!weight.IsWeight || weight.Shape.Aggregate(1L, (a, d) => a * d) > 16) return null;
        var allocator = new NativeAllocator();
        using var tensor = WeightFileReader.Read(weight, allocator);
        return tensor.ElementType switch
        {
            ElementType.Float32 => tensor.Span<float>().ToArray().Select(v => (double)v).ToArray(),
            ElementType.Float16 => tensor.Span<Half>().ToArray().Select(v => (double)v).ToArray(),
            ElementType.Int64 => tensor.Span<long>().ToArray().Select(v => (double)v).ToArray(),
            ElementType.Int32 => tensor.Span<int>().ToArray().Select(v => (double)v).ToArray(),
            _ => null,
        };
    }
}
