using OnnxStream.Tensors;

namespace OnnxStream.Graph.Passes;

/// <summary>
/// Moves the last reader of a large activation up to just after the activation's producer when it can run there (its other
/// inputs are weights or already computed) and its output is smaller: the activation then dies with its earlier readers
/// (which may write over it), and only the smaller output waits. This is the shortcut of a resnet whose input and output
/// channels differ (SD 1.5's UNet and VAE): exported after the residual branch, its 1×1 convolution keeps the block's input
/// (15 MiB at the UNet's 64×64, 960-channel level) alive through the whole branch, where its output is a third of that. A
/// move is kept only when the activation bytes held at once over the affected stretch of the schedule go down.
/// </summary>
internal static class ShortcutHoisting
{
    /// <summary>
    /// The graph with such readers moved; itself when none is. <paramref name="writesOverInput"/> says whether a node's
    /// output may go over its input j when that input dies there (<see cref="Operators.IOperator.WritesOverInput"/>).
    /// </summary>
    public static ModelGraph Apply(ModelGraph graph, Func<GraphNode, int, bool> writesOverInput)
    {
        var nodes = graph.Nodes.ToList();
        var readers = new Dictionary<string, List<GraphNode>>(StringComparer.Ordinal);
        foreach (var node in nodes)
            foreach (var input in node.Inputs.Where(i => i is { IsWeight: false }).Select(i => i!.Name).Distinct())
            {
                if (!readers.TryGetValue(input, out var list)) readers[input] = list = [];
                list.Add(node);
            }
        var graphOutputs = graph.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var (position, producer) = Positions(nodes);
        var moved = false;
        for (var p = 0; p < nodes.Count; p++)
        {
            if (nodes[p].Outputs is not [{ HasStaticShape: true } tensor] || graphOutputs.Contains(tensor.Name) ||
                readers.GetValueOrDefault(tensor.Name) is not { Count: >= 2 } tensorReaders)
                continue;
            var reader = tensorReaders.MaxBy(r => position[r])!;
            var last = position[reader];
            // It can run right after the producer when its other activation inputs are graph inputs or already computed.
            if (reader.Outputs is not [{ HasStaticShape: true } output] || Bytes(output) >= Bytes(tensor) ||
                reader.Inputs.Any(i => i is { IsWeight: false } && producer.TryGetValue(i.Name, out var at) && at > p))
                continue;
            var candidate = new List<GraphNode>(nodes);
            candidate.RemoveAt(last);
            candidate.Insert(p + 1, reader);
            if (MaxHeld(candidate, graph, writesOverInput, p, last) >= MaxHeld(nodes, graph, writesOverInput, p, last)) continue;
            nodes = candidate;
            (position, producer) = Positions(nodes);
            moved = true;
        }
        return moved ? graph with { Nodes = nodes } : graph;
    }

    /// <summary>Each node's position in <paramref name="nodes"/>, and the position of each tensor's producer.</summary>
    private static (Dictionary<GraphNode, int> Position, Dictionary<string, int> Producer) Positions(List<GraphNode> nodes)
    {
        var position = new Dictionary<GraphNode, int>(ReferenceEqualityComparer.Instance);
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < nodes.Count; i++)
        {
            position[nodes[i]] = i;
            foreach (var output in nodes[i].Outputs) producer[output.Name] = i;
        }
        return (position, producer);
    }

    /// <summary>
    /// The most activation bytes held at once while positions <paramref name="from"/>..<paramref name="to"/> of
    /// <paramref name="nodes"/> run: each tensor from its producer (graph inputs from the start) to its last reader (graph
    /// outputs to the end); an output written over a dying input of its size shares that input's bytes.
    /// </summary>
    private static long MaxHeld(List<GraphNode> nodes, ModelGraph graph, Func<GraphNode, int, bool> writesOverInput, int from, int to)
    {
        var last = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < nodes.Count; i++)
            foreach (var input in nodes[i].Inputs)
                if (input is { IsWeight: false }) last[input.Name] = i;
        var fixedNames = graph.Inputs.Concat(graph.Outputs).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var output in graph.Outputs) last[output.Name] = nodes.Count - 1;
        // Memory blocks: where each starts, its bytes, and the last position any tensor in it is read.
        var blocks = new List<(int Start, long Bytes, int End)>();
        var blockOf = new Dictionary<string, int>(StringComparer.Ordinal);
        void Hold(string name, int block, int position)
        {
            blockOf[name] = block;
            blocks[block] = blocks[block] with { End = Math.Max(blocks[block].End, last.GetValueOrDefault(name, position)) };
        }
        foreach (var input in graph.Inputs)
        {
            blocks.Add((0, Bytes(input), 0));
            Hold(input.Name, blocks.Count - 1, 0);
        }
        for (var i = 0; i < nodes.Count; i++)
        {
            var reused = -1;
            foreach (var output in nodes[i].Outputs)
            {
                var j = reused >= 0 ? -1 : Array.FindIndex(nodes[i].Inputs, input => input is { IsWeight: false } x && !fixedNames.Contains(x.Name) &&
                    last.GetValueOrDefault(x.Name) == i && blockOf.ContainsKey(x.Name) && Bytes(x) == Bytes(output));
                if (j >= 0 && writesOverInput(nodes[i], j))
                {
                    reused = blockOf[nodes[i].Inputs[j]!.Name];
                    Hold(output.Name, reused, i);
                    continue;
                }
                blocks.Add((i, Bytes(output), i));
                Hold(output.Name, blocks.Count - 1, i);
            }
        }
        var delta = new long[nodes.Count + 1];
        foreach (var (start, bytes, end) in blocks)
        {
            delta[start] += bytes;
            delta[end + 1] -= bytes;
        }
        long held = 0, max = 0;
        for (var i = 0; i <= to; i++)
        {
            held += delta[i];
            if (i >= from) max = Math.Max(max, held);
        }
        return max;
    }

    private static long Bytes(TensorDescriptor tensor) =>
        tensor.Shape.Aggregate(1L, (a, d) => a * Math.Max(d, 0)) * (tensor.ActivationType ?? ElementType.Float32).Size();
}
