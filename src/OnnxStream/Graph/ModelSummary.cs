using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Graph;

/// <summary>
/// What a model holds and what running it will need, computed from the graph alone: the operator
/// histogram, the parameters, and the peak memory of the one-operation-at-a-time schedule.
/// </summary>
/// <param name="OperatorCounts">Nodes per operator type, most frequent first.</param>
/// <param name="ParameterCount">Elements of all weights.</param>
/// <param name="ParameterBytes">Bytes of all weights as stored.</param>
/// <param name="PeakScheduleBytes">
/// The most bytes held at once by the schedule of a session with the given options (the graph with its fusions and in its
/// order: see <see cref="Runtime.InferenceSessionOptions"/>): live activations (as float32 when their type is known only
/// at run time) plus the running operation's weights, outputs and scratch (<see cref="Operators.IOperator.ScratchBytes"/>); an
/// output written over an input that dies with its operation (see <see cref="Operators.IOperator.WritesOverInput"/>) takes no more.
/// </param>
/// <param name="PeakNode">The node at which that peak occurs.</param>
/// <param name="UnknownShapes">Activations whose shape neither the model states nor load-time inference found (known only at run time); the peak counts them as empty, so it is a lower bound when this is not zero.</param>
public sealed record ModelSummary(IReadOnlyList<(string OpType, int Count)> OperatorCounts, long ParameterCount, long ParameterBytes,
    long PeakScheduleBytes, string PeakNode, int UnknownShapes)
{
    /// <summary>Summarizes <paramref name="graph"/> as a session with <paramref name="options"/> (default: the defaults) would run it.</summary>
    /// <exception cref="ModelFormatException">
    /// An activation of known shape would be larger than <see cref="Runtime.InferenceSessionOptions.MaxTensorBytes"/>: the
    /// session would refuse the model.
    /// </exception>
    public static ModelSummary Of(ModelGraph graph, Runtime.InferenceSessionOptions? options = null)
    {
        options ??= new Runtime.InferenceSessionOptions();
        Memory.TensorLimit.Check(graph, options.MaxTensorBytes);
        var counts = graph.Nodes.GroupBy(n => n.OpType).Select(g => (g.Key, g.Count()))
            .OrderByDescending(c => c.Item2).ThenBy(c => c.Key, StringComparer.Ordinal).ToList();
        var weights = graph.WeightsInUseOrder();
        long parameters = weights.Sum(w => Shapes.ElementCount(w.Shape));
        long parameterBytes = weights.Sum(w => Shapes.ElementCount(w.Shape) * w.WeightType!.Value.Size());

        graph = Runtime.InferenceSession.ScheduledGraph(graph, options, Operators.OperatorRegistry.Default);
        var remainingUses = new Dictionary<string, int>();
        foreach (var node in graph.Nodes)
            foreach (var input in node.Inputs)
                if (input is { IsWeight: false }) remainingUses[input.Name] = remainingUses.GetValueOrDefault(input.Name) + 1;
        var unknown = new HashSet<string>();
        long Bytes(TensorDescriptor t)
        {
            if (!t.HasStaticShape && (t.Shape.Contains(0) || t.Shape.Length == 0)) { unknown.Add(t.Name); return 0; }
            return Shapes.ElementCount(t.Shape) * (t.WeightType ?? t.ActivationType ?? ElementType.Float32).Size();
        }

        var live = graph.Inputs.Sum(Bytes);
        long peak = live;
        var peakNode = "";
        var callers = graph.Inputs.Select(i => i.Name).Concat(graph.Outputs.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            var writtenOver = WrittenOverInput(node, remainingUses, callers, Bytes);
            var outputs = node.Outputs.Sum(Bytes) - (writtenOver is null ? 0 : Bytes(writtenOver));
            var scratch = Operators.OperatorRegistry.Default.TryGet(node.OpType, out var op)
                ? op.ScratchBytes(node, Bytes, j => node.Inputs[j] is { IsWeight: false } input && !callers.Contains(input.Name) &&
                                                    remainingUses[input.Name] == 1 && node.Inputs.Count(other => other?.Name == input.Name) == 1)
                : 0;
            var during = live + node.Inputs.Where(i => i is { IsWeight: true }).Sum(i => Bytes(i!)) + outputs + scratch;
            if (during > peak) (peak, peakNode) = (during, node.Name);
            live += outputs;
            foreach (var input in node.Inputs)
                if (input is { IsWeight: false } && --remainingUses[input.Name] == 0 && input != writtenOver) live -= Bytes(input);
            foreach (var output in node.Outputs)
                if (!remainingUses.ContainsKey(output.Name)) live -= Bytes(output);
        }
        return new ModelSummary(counts, parameters, parameterBytes, peak, peakNode, unknown.Count);
    }

    /// <summary>
    /// The input whose memory the session would hand <paramref name="node"/>'s operator as output 0: one it may write
    /// over, read by it alone and last, of the output's size, not the caller's (as <see cref="Runtime.InferenceSession"/> decides).
    /// </summary>
    private static TensorDescriptor? WrittenOverInput(GraphNode node, Dictionary<string, int> remainingUses, HashSet<string> callers,
        Func<TensorDescriptor, long> bytes)
    {
        if (node.Outputs.Length == 0 || !Operators.OperatorRegistry.Default.TryGet(node.OpType, out var op)) return null;
        for (var j = 0; j < node.Inputs.Length; j++)
            if (node.Inputs[j] is { IsWeight: false } input && op.WritesOverInput(j) && !callers.Contains(input.Name) &&
                remainingUses[input.Name] == 1 && node.Inputs.Count(other => other?.Name == input.Name) == 1 &&
                bytes(input) == bytes(node.Outputs[0]) && input.ActivationType == node.Outputs[0].ActivationType)
                return input;
        return null;
    }
}
