namespace OnnxStream.Graph.Passes;

/// <summary>Puts nodes in an executable order (ONNX graphs are sorted by spec; not every exporter obeys).</summary>
internal static class TopologicalSort
{
    /// <summary>
    /// <paramref name="nodes"/> if already sorted, else a stable topological order (each node as early as
    /// its inputs allow, ties kept in file order).
    /// </summary>
    /// <exception cref="ModelFormatException">The graph has a cycle; the message names a node on it.</exception>
    public static IReadOnlyList<GraphNode> Sort(IReadOnlyList<GraphNode> nodes, string source)
    {
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < nodes.Count; i++)
            foreach (var output in nodes[i].Outputs)
                if (!producer.TryAdd(output.Name, i))
                    throw new ModelFormatException($"{source}: tensor '{output.Name}' is produced by {nodes[producer[output.Name]]} and by {nodes[i]}");

        if (IsSorted(nodes, producer)) return nodes;

        var dependents = new List<int>[nodes.Count];
        var pending = new int[nodes.Count];
        for (var i = 0; i < nodes.Count; i++) dependents[i] = [];
        for (var i = 0; i < nodes.Count; i++)
            foreach (var from in Producers(nodes[i], producer))
            {
                dependents[from].Add(i);
                pending[i]++;
            }

        var ready = new PriorityQueue<int, int>();
        for (var i = 0; i < nodes.Count; i++)
            if (pending[i] == 0) ready.Enqueue(i, i);
        var order = new List<GraphNode>(nodes.Count);
        while (ready.TryDequeue(out var next, out _))
        {
            order.Add(nodes[next]);
            foreach (var dependent in dependents[next])
                if (--pending[dependent] == 0) ready.Enqueue(dependent, dependent);
        }
        if (order.Count == nodes.Count) return order;
        var stuck = Enumerable.Range(0, nodes.Count).First(i => pending[i] > 0);
        throw new ModelFormatException($"{source}: the graph has a cycle through {nodes[stuck]}");
    }

    private static bool IsSorted(IReadOnlyList<GraphNode> nodes, Dictionary<string, int> producer)
    {
        for (var i = 0; i < nodes.Count; i++)
            foreach (var input in nodes[i].Inputs)
                if (input is { IsWeight: false } && producer.TryGetValue(input.Name, out var from) && from >= i)
                    return false;
        return true;
    }

    /// <summary>The distinct producers of a node's activation inputs.</summary>
    private static IEnumerable<int> Producers(GraphNode node, Dictionary<string, int> producer) =>
        node.Inputs.Where(i => i is { IsWeight: false } && producer.ContainsKey(i.Name))
            .Select(i => producer[i!.Name]).Distinct();
}
