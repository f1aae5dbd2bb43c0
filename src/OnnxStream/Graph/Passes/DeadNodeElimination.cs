namespace OnnxStream.Graph.Passes;

/// <summary>Removes nodes none of whose outputs reaches a graph output.</summary>
internal static class DeadNodeElimination
{
    public static ModelGraph Apply(ModelGraph graph)
    {
        var live = graph.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var kept = new List<GraphNode>(graph.Nodes.Count);
        for (var i = graph.Nodes.Count - 1; i >= 0; i--)
        {
            var node = graph.Nodes[i];
            if (!node.Outputs.Any(o => live.Contains(o.Name))) continue;
            kept.Add(node);
            foreach (var input in node.Inputs)
                if (input is { IsWeight: false }) live.Add(input.Name);
        }
        if (kept.Count == graph.Nodes.Count) return graph;
        kept.Reverse();
        return graph with { Nodes = kept };
    }
}
