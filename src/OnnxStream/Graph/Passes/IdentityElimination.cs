using OnnxStream.Graph.OnnxFormat;

namespace OnnxStream.Graph.Passes;

/// <summary>
/// Removes <c>Identity</c> nodes, and <c>Dropout</c> nodes in inference mode whose mask output is unused,
/// by renaming: consumers read the node's input instead. When the node's output is a graph output, its
/// name is kept: the tensor's producer is renamed to it instead (when the producer is a node, and the
/// tensor is neither a graph input nor another graph output; else the node stays).
/// </summary>
internal static class IdentityElimination
{
    public static ModelGraph Apply(ModelGraph graph)
    {
        if (!graph.Nodes.Any(n => n.OpType is "Identity" or "Dropout")) return graph;
        var graphOutputs = graph.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var graphInputs = graph.Inputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var produced = new HashSet<string>(StringComparer.Ordinal);
        var consumed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            foreach (var output in node.Outputs) produced.Add(output.Name);
            foreach (var input in node.Inputs)
                if (input is { IsWeight: false }) consumed.Add(input.Name);
        }

        var rename = new Dictionary<string, TensorDescriptor>(StringComparer.Ordinal);
        TensorDescriptor? Resolve(TensorDescriptor? tensor)
        {
            for (var hops = 0; tensor is { IsWeight: false } && rename.TryGetValue(tensor.Name, out var next); hops++)
            {
                if (hops > rename.Count) throw new InvalidOperationException($"renaming '{tensor.Name}' loops");
                tensor = next;
            }
            return tensor;
        }

        var removed = new HashSet<GraphNode>(ReferenceEqualityComparer.Instance);
        foreach (var node in graph.Nodes)
        {
            if (!IsRemovable(node, consumed, graphOutputs)) continue;
            var source = Resolve(node.Inputs[0])!;
            var output = node.Outputs[0];
            if (!graphOutputs.Contains(output.Name))
            {
                rename[output.Name] = source;
                removed.Add(node);
            }
            else if (!source.IsWeight && produced.Contains(source.Name) && !graphOutputs.Contains(source.Name) && !graphInputs.Contains(source.Name))
            {
                rename[source.Name] = output;
                removed.Add(node);
            }
        }
        if (removed.Count == 0) return graph;

        var nodes = new List<GraphNode>(graph.Nodes.Count - removed.Count);
        foreach (var node in graph.Nodes)
        {
            if (removed.Contains(node)) continue;
            var inputs = node.Inputs.Select(Resolve).ToArray();
            var outputs = node.Outputs.Select(o => Resolve(o)!).ToArray();
            nodes.Add(inputs.SequenceEqual(node.Inputs) && outputs.SequenceEqual(node.Outputs) ? node : node with { Inputs = inputs, Outputs = outputs });
        }
        return graph with { Nodes = nodes };
    }

    private static bool IsRemovable(GraphNode node, HashSet<string> consumed, HashSet<string> graphOutputs)
    {
        if (node.Inputs.Length == 0 || node.Inputs[0] is null || node.Outputs.Length == 0) return false;
        switch (node.OpType)
        {
            case "Identity":
                return node.Outputs.Length == 1;
            case "Dropout":
                // The mask (output 1) must be unused; training_mode (input 2), when given, must be a constant false.
                if (node.Outputs.Skip(1).Any(o => consumed.Contains(o.Name) || graphOutputs.Contains(o.Name))) return false;
                if (node.Inputs.Length < 3 || node.Inputs[2] is null) return true;
                if (!node.Inputs[2]!.IsWeight) return false;
                return WeightBytes.Read(node.Inputs[2]!, node.ToString()).All(b => b == 0);
            default:
                return false;
        }
    }
}
