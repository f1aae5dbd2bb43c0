using OnnxStream.Kernels;
using OnnxStream.Operators;
using OnnxStream.Tensors;

namespace OnnxStream.Graph.Passes;

/// <summary>
/// Executes at load time the shape-arithmetic nodes whose inputs are all constants (inline weights, or
/// file weights of at most <see cref="WeightLocation.MaxInlineBytes"/>), with the registered operator,
/// and replaces them by inline weights when every output fits in <see cref="WeightLocation.MaxInlineBytes"/>.
/// A <c>Shape</c> node folds when its input's shape is known: a weight, or an activation whose declared
/// shape is fully static (a graph input, which the session checks, or a value_info of the model).
/// Nodes producing graph outputs are kept. An operator that is not registered, or that fails on the
/// constants, leaves its node in place (the session reports it when it runs).
/// </summary>
internal static class ConstantFolding
{
    /// <summary>Operator types that may be folded.</summary>
    public static IReadOnlySet<string> FoldableOps { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "CastLike", "Range", "ConstantOfShape",
        "Expand", "Tile", "Equal", "Where", "Add", "Sub", "Mul", "Div", "Mod", "Pow", "Neg", "Abs", "Sign", "Floor", "Ceil",
        "Round", "Sqrt", "Reciprocal", "Min", "Max", "Clip", "Reshape", "Flatten", "Transpose", "Split", "Not", "And", "Or",
        "Xor", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "ReduceProd", "ReduceSum", "ReduceMin", "ReduceMax",
        "Identity",
    };

    /// <summary>Folds until nothing folds; returns <paramref name="graph"/> itself when nothing did.</summary>
    public static ModelGraph Apply(ModelGraph graph, OperatorRegistry? registry = null)
    {
        registry ??= OperatorRegistry.Default;
        var graphOutputs = graph.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var folded = new Dictionary<string, TensorDescriptor>(StringComparer.Ordinal);
        var failed = new HashSet<string>(StringComparer.Ordinal);
        using var evaluator = new ConstantEvaluator();
        var nodes = graph.Nodes;
        var foldedAny = false;
        bool changed;
        do
        {
            changed = false;
            var next = new List<GraphNode>(nodes.Count);
            foreach (var original in nodes)
            {
                var node = Substitute(original, folded);
                if (!failed.Contains(node.Name) && TryFold(node, graph.Source, graphOutputs, registry, evaluator, folded, failed))
                {
                    changed = foldedAny = true;
                    continue;
                }
                next.Add(node);
            }
            nodes = next;
        } while (changed);
        return foldedAny ? graph with { Nodes = nodes } : graph;
    }

    /// <summary>The node with activation inputs that were folded replaced by their constants.</summary>
    private static GraphNode Substitute(GraphNode node, Dictionary<string, TensorDescriptor> folded)
    {
        if (folded.Count == 0 || !node.Inputs.Any(i => i is { IsWeight: false } && folded.ContainsKey(i.Name))) return node;
        var inputs = node.Inputs.Select(i => i is { IsWeight: false } && folded.TryGetValue(i.Name, out var weight) ? weight : i).ToArray();
        return node with { Inputs = inputs };
    }

    private static bool TryFold(GraphNode node, string source, HashSet<string> graphOutputs, OperatorRegistry registry,
        ConstantEvaluator evaluator, Dictionary<string, TensorDescriptor> folded, HashSet<string> failed)
    {
        if (!FoldableOps.Contains(node.OpType) || node.Outputs.Length == 0 || node.Outputs.Any(o => graphOutputs.Contains(o.Name)))
            return false;
        if (node.OpType == "Shape") return TryFoldShape(node, source, folded);
        if (!registry.TryGet(node.OpType, out var op)) return false;
        if (!node.Inputs.Any(i => i is not null)) return false;
        foreach (var input in node.Inputs)
            if (input is not null && (!input.IsWeight || (input.Location!.Inline is null && input.Location.Length > WeightLocation.MaxInlineBytes)))
                return false;

        Tensor[]? outputs;
        try
        {
            outputs = evaluator.Run(node, op, inputs => EstimatedOutputBytes(node, inputs) <= WeightLocation.MaxInlineBytes);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The session will run the node and report the problem in context.
            failed.Add(node.Name);
            return false;
        }
        if (outputs is null) return false;
        try
        {
            if (outputs.Any(t => t.ElementCount == 0 || t.ByteCount > WeightLocation.MaxInlineBytes)) return false;
            for (var k = 0; k < outputs.Length; k++)
                folded[node.Outputs[k].Name] = Constant(node.Outputs[k].Name, outputs[k].ElementType, outputs[k].Shape,
                    outputs[k].Bytes.ToArray(), source, outputs[k].Quantization);
            return true;
        }
        finally
        {
            foreach (var tensor in outputs) tensor.Dispose();
        }
    }

    /// <summary>Shape of a weight, or of an activation whose declared shape is fully static.</summary>
    private static bool TryFoldShape(GraphNode node, string source, Dictionary<string, TensorDescriptor> folded)
    {
        if (node.Inputs.Length != 1 || node.Inputs[0] is not { } input || node.Outputs.Length != 1) return false;
        if (!input.IsWeight && (input.Shape.Length == 0 || input.Shape.Any(d => d <= 0))) return false;
        var rank = input.Shape.Length;
        long Clamp(long axis) => Math.Clamp(axis < 0 ? axis + rank : axis, 0, rank);
        var start = (int)Clamp(node.Attributes.GetInt("start", 0));
        var end = (int)Clamp(node.Attributes.GetInt("end", rank));
        if (end <= start) return false; // an empty shape cannot be a weight
        var dims = input.Shape[start..end].Select(d => (long)d).ToArray();
        var bytes = new byte[dims.Length * sizeof(long)];
        Buffer.BlockCopy(dims, 0, bytes, 0, bytes.Length);
        folded[node.Outputs[0].Name] = Constant(node.Outputs[0].Name, ElementType.Int64, [dims.Length], bytes, source, null);
        return true;
    }

    private static TensorDescriptor Constant(string name, ElementType type, int[] shape, byte[] bytes, string source, Quantization? quantization) =>
        new(name, shape, type, quantization, new WeightLocation(source, 0, bytes.Length, bytes));

    /// <summary>
    /// For the operators whose output can be much larger than their inputs, the output's size from the
    /// inputs, so a large constant is never materialized at load; 0 for the others.
    /// </summary>
    private static long EstimatedOutputBytes(GraphNode node, Tensor?[] inputs)
    {
        long Values(Tensor? t) => t is null ? 1 : t.ElementType switch
        {
            ElementType.Int64 => t.Span<long>().ToArray().Aggregate(1L, (a, v) => checked(a * Math.Max(v, 0))),
            ElementType.Int32 => t.Span<int>().ToArray().Aggregate(1L, (a, v) => checked(a * Math.Max(v, 0))),
            _ => 1,
        };
        try
        {
            switch (node.OpType)
            {
                case "ConstantOfShape":
                    var type = node.Attributes.GetString("value" + OnnxFormat.AttributeText.DTypeSuffix, "float32");
                    return Values(inputs[0]) * (ElementTypes.TryParse(type, out var t) ? t.Size() : 8);
                case "Expand" when inputs.Length > 1 && inputs[0] is { } data && inputs[1] is { ElementType: ElementType.Int64 } shape:
                    var target = shape.Span<long>().ToArray().Select(v => (int)Math.Clamp(v, 0, int.MaxValue)).ToArray();
                    return Shapes.TryBroadcast(data.Shape, target, out var result)
                        ? Shapes.ElementCount(result) * data.ElementType.Size()
                        : 0;
                case "Tile" when inputs.Length > 1 && inputs[0] is { } tiled:
                    return tiled.ByteCount * Values(inputs[1]);
                case "Range" when inputs.Length == 3 && inputs.All(i => i is not null):
                    double Scalar(Tensor x) => x.ElementType switch
                    {
                        ElementType.Int64 => x.Span<long>()[0],
                        ElementType.Int32 => x.Span<int>()[0],
                        ElementType.Float32 => x.Span<float>()[0],
                        _ => 0,
                    };
                    var delta = Scalar(inputs[2]!);
                    return delta == 0 ? 0 : (long)Math.Max(0, Math.Ceiling((Scalar(inputs[1]!) - Scalar(inputs[0]!)) / delta)) * 8;
                default:
                    return 0;
            }
        }
        catch (OverflowException)
        {
            return long.MaxValue;
        }
    }
}
