namespace OnnxStream.Graph;

/// <summary>Derives a graph's inputs and outputs from its nodes, and checks the order is executable.</summary>
internal static class GraphBuilder
{
    public static ModelGraph Build(string source, List<GraphNode> nodes)
    {
        var producer = new Dictionary<string, int>();
        for (var i = 0; i < nodes.Count; i++)
            foreach (var output in nodes[i].Outputs)
                if (!producer.TryAdd(output.Name, i))
                    throw new ModelFormatException($"{nodes[i].Source}: tensor '{output.Name}' is produced twice");

        var inputs = new List<TensorDescriptor>();
        var seenInputs = new HashSet<string>();
        var lastUse = new Dictionary<string, int>();
        for (var i = 0; i < nodes.Count; i++)
            foreach (var input in nodes[i].Inputs)
            {
                if (input is null || input.IsWeight) continue;
                lastUse[input.Name] = i;
                if (!producer.TryGetValue(input.Name, out var from))
                {
                    if (seenInputs.Add(input.Name)) inputs.Add(input);
                }
                else if (from >= i)
                    throw new ModelFormatException($"{nodes[i].Source}: '{input.Name}' is used before the node that produces it ({nodes[from].Source}): the order is not topological, or there is a cycle");
            }

        var outputs = nodes.SelectMany(node => node.Outputs.Where(o => !lastUse.ContainsKey(o.Name))).ToList();
        return new ModelGraph(source, nodes, inputs, outputs);
    }
}
