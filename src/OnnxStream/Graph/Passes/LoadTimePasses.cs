using OnnxStream.Operators;

namespace OnnxStream.Graph.Passes;

/// <summary>
/// What both loaders do to a graph so that exports never run through onnx-simplifier run lean: Identity
/// and Dropout removal, then constant folding and shape inference in turn until neither finds anything
/// new (inferred shapes let Shape nodes fold, folded constants let more shapes be inferred), then dead
/// node removal.
/// </summary>
internal static class LoadTimePasses
{
    /// <summary>Rounds of folding and inference; real exports settle in two or three.</summary>
    private const int MaxRounds = 8;

    /// <summary>Applies the passes; <paramref name="shapeMismatch"/>: see <see cref="ShapeInference.Apply"/>.</summary>
    public static ModelGraph Apply(ModelGraph graph, OperatorRegistry? registry = null, Action<string>? shapeMismatch = null)
    {
        registry ??= OperatorRegistry.Default;
        graph = IdentityElimination.Apply(graph);
        for (var round = 0; round < MaxRounds; round++)
        {
            var folded = ConstantFolding.Apply(graph, registry);
            var inferred = ShapeInference.Apply(folded, registry, shapeMismatch);
            var settled = ReferenceEquals(folded, graph) && ReferenceEquals(inferred, folded);
            graph = inferred;
            if (settled) break;
        }
        return DeadNodeElimination.Apply(graph);
    }
}
