namespace OnnxStream.Graph;

/// <summary>A model: nodes in execution order, and the graph's inputs and outputs.</summary>
/// <param name="Source">The file it was read from.</param>
/// <param name="Nodes">Nodes in topological (execution) order.</param>
/// <param name="Inputs">Activations no node produces: the caller supplies them.</param>
/// <param name="Outputs">Activations no later node consumes, in the order they are produced.</param>
public sealed record ModelGraph(string Source, IReadOnlyList<GraphNode> Nodes, IReadOnlyList<TensorDescriptor> Inputs,
    IReadOnlyList<TensorDescriptor> Outputs)
{
    /// <summary>Every weight, in the order nodes use them (first use), each once.</summary>
    public IReadOnlyList<TensorDescriptor> WeightsInUseOrder()
    {
        var seen = new HashSet<string>();
        var order = new List<TensorDescriptor>();
        foreach (var node in Nodes)
            foreach (var input in node.Inputs)
                if (input is { IsWeight: true } && seen.Add(input.Name))
                    order.Add(input);
        return order;
    }
}
