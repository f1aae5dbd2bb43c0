using System.Runtime.InteropServices;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Tensors;
using OnnxStream.Weights;

namespace OnnxStream.Graph.Passes;

/// <summary>
/// Static shape and type inference with the operators' own shape inference: each node runs its
/// registered operator on placeholder inputs that have the right types and shapes but no data, and the
/// operator is stopped as soon as it declares its outputs, before any computation. The inputs whose
/// values decide a shape (Reshape's shape, Slice's starts, ...) must be constants and are read for real;
/// a node with such an input computed at run time, a data-dependent output (NonZero), or an input of
/// unknown shape keeps unknown outputs, which the operator then finds at run time.
/// </summary>
/// <remarks>
/// Placeholders point into one zero-filled block that is never written: the pages of a large zeroed
/// allocation are not resident until written, so inferring a model with gigabyte activations costs no
/// memory. An operator with several outputs (Split, TopK) runs to completion into real tensors.
/// </remarks>
internal static class ShapeInference
{
    /// <summary>Per operator type, the inputs whose values (not only shapes) decide the output shape.</summary>
    private static readonly Dictionary<string, int[]> ValueInputs = new(StringComparer.Ordinal)
    {
        ["Reshape"] = [1], ["Expand"] = [1], ["Tile"] = [1], ["Unsqueeze"] = [1], ["Squeeze"] = [1], ["Slice"] = [1, 2, 3, 4],
        ["Pad"] = [1, 3], ["Resize"] = [1, 2, 3], ["Upsample"] = [1], ["Split"] = [1], ["ConstantOfShape"] = [0],
        ["Range"] = [0, 1, 2], ["TopK"] = [1], ["ReduceMean"] = [1], ["ReduceSum"] = [1], ["ReduceMax"] = [1],
        ["ReduceMin"] = [1], ["ReduceProd"] = [1], ["OneHot"] = [1],
    };

    /// <summary>Operators whose output shape depends on their input data.</summary>
    private static readonly HashSet<string> DataDependent = new(StringComparer.Ordinal) { "NonZero", "Unique", "Compress" };

    /// <summary>
    /// <paramref name="graph"/> with every activation whose type and shape could be inferred carrying them
    /// (<see cref="TensorDescriptor.HasStaticShape"/>); the graph itself when nothing new was found.
    /// </summary>
    /// <param name="graph">The graph.</param>
    /// <param name="registry">The operators.</param>
    /// <param name="mismatch">
    /// Told of each operation output whose shape a model.txt declares (its known dimensions, 0 being unknown) and that
    /// differs from the inferred one; null: that is a <see cref="ModelFormatException"/>. The inferred shape is kept.
    /// </param>
    public static ModelGraph Apply(ModelGraph graph, OperatorRegistry? registry = null, Action<string>? mismatch = null)
    {
        registry ??= OperatorRegistry.Default;
        var known = new Dictionary<string, (ElementType Type, int[] Shape)>(StringComparer.Ordinal);
        foreach (var input in graph.Inputs)
            if (input.HasStaticShape)
                known[input.Name] = (input.ActivationType ?? GuessInputType(graph, input.Name), input.Shape);

        using var placeholders = new PlaceholderMemory();
        using var evaluator = new ConstantEvaluator();
        // Values of the shape arithmetic computed on the way (Shape of an inferred tensor, and what folds from
        // it), so a Reshape whose shape comes from a Shape node is inferred in this same pass.
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var node in graph.Nodes)
            {
                if (DataDependent.Contains(node.OpType) || !registry.TryGet(node.OpType, out var op)) continue;
                if (node.Outputs.All(o => o is { HasStaticShape: true, ActivationType: not null }))
                {
                    // Inferred by an earlier round (or declared): nothing new to learn.
                    foreach (var output in node.Outputs) known[output.Name] = (output.ActivationType!.Value, output.Shape);
                    continue;
                }
                var outputs = Evaluate(node, op, known, values, placeholders, evaluator)
                              ?? Infer(node, op, known, values, placeholders, evaluator);
                if (outputs is null) continue;
                for (var k = 0; k < node.Outputs.Length; k++)
                    if (outputs[k] is { } output) known[node.Outputs[k].Name] = output;
            }
        }
        finally
        {
            foreach (var value in values.Values) value.Dispose();
        }

        foreach (var node in graph.Nodes)
            foreach (var output in node.Outputs)
                if (known.TryGetValue(output.Name, out var found) && Contradicts(output, found.Shape))
                {
                    var message = $"{node}: output '{output.Name}' is declared [{string.Join(',', output.Shape)}] (0: unknown) but computes to " +
                                  $"[{string.Join(',', found.Shape)}]: the line or its attributes are wrong or cut (a lenient load uses the computed shape)";
                    if (mismatch is null) throw new ModelFormatException(message);
                    mismatch(message);
                }

        var changed = false;
        TensorDescriptor? Update(TensorDescriptor? descriptor)
        {
            if (descriptor is null || descriptor.IsWeight || !known.TryGetValue(descriptor.Name, out var found)) return descriptor;
            if (descriptor.HasStaticShape && descriptor.ActivationType == found.Type && descriptor.Shape.AsSpan().SequenceEqual(found.Shape))
                return descriptor;
            changed = true;
            return descriptor with { Shape = found.Shape, ActivationType = found.Type, HasStaticShape = true };
        }
        var nodes = graph.Nodes.Select(n => n with { Inputs = n.Inputs.Select(Update).ToArray(), Outputs = n.Outputs.Select(o => Update(o)!).ToArray() }).ToList();
        var outputsOfGraph = graph.Outputs.Select(o => Update(o)!).ToList();
        return changed ? graph with { Nodes = nodes, Outputs = outputsOfGraph } : graph;
    }

    /// <summary>
    /// Whether an activation's shape as a model.txt declares it (no type: not yet inferred) with at least one known (non-zero)
    /// dimension has another rank than <paramref name="inferred"/> or another size in a known dimension. "()" (a scalar or
    /// unknown) and all-unknown shapes such as "(0)", which unsimplified exports write for any rank, say nothing.
    /// </summary>
    private static bool Contradicts(TensorDescriptor declared, int[] inferred) =>
        !declared.IsWeight && declared.ActivationType is null && declared.Shape.Any(d => d != 0) &&
        (declared.Shape.Length != inferred.Length || declared.Shape.Where((d, i) => d != 0 && d != inferred[i]).Any());

    /// <summary>The node's output types and shapes (null entries: unknown), or null when the node cannot be inferred.</summary>
    private static (ElementType, int[])?[]? Infer(GraphNode node, IOperator op, Dictionary<string, (ElementType Type, int[] Shape)> known,
        Dictionary<string, Tensor> values, PlaceholderMemory placeholders, ConstantEvaluator evaluator)
    {
        var valueInputs = ValueInputs.GetValueOrDefault(node.OpType, []);
        // Every placeholder input shares one block: size it for the largest first.
        foreach (var descriptor in node.Inputs)
            if (descriptor is not null)
            {
                if (descriptor.IsWeight && !placeholders.Reserve(ConstantEvaluator.ComputeType(descriptor), descriptor.Shape)) return null;
                if (!descriptor.IsWeight && known.TryGetValue(descriptor.Name, out var activation) && !placeholders.Reserve(activation.Type, activation.Shape))
                    return null;
            }
        var inputs = new Tensor?[node.Inputs.Length];
        var owned = new List<Tensor>();
        try
        {
            for (var i = 0; i < inputs.Length; i++)
            {
                var descriptor = node.Inputs[i];
                if (descriptor is null) continue;
                if (descriptor.IsWeight)
                {
                    if (valueInputs.Contains(i) && descriptor.Location!.Inline is null && descriptor.Location.Length > WeightLocation.MaxInlineBytes)
                        return null;
                    // Small constants for real (an operator may read them); large weights as placeholders of their compute type.
                    if (descriptor.Location!.Inline is not null || descriptor.Location.Length <= WeightLocation.MaxInlineBytes)
                        inputs[i] = evaluator.Read(descriptor, owned);
                    else
                        inputs[i] = placeholders.Input(ConstantEvaluator.ComputeType(descriptor), descriptor.Shape, owned);
                    continue;
                }
                if (values.TryGetValue(descriptor.Name, out var value))
                {
                    inputs[i] = value;
                    continue;
                }
                if (valueInputs.Contains(i) || !known.TryGetValue(descriptor.Name, out var activation)) return null;
                inputs[i] = placeholders.Input(activation.Type, activation.Shape, owned);
            }

            var capture = new Capture(node.Outputs.Length, owned);
            try
            {
                evaluator.RunWithCapture(node, op, inputs, capture);
            }
            catch (Exception e) when (Unwrap(e) is OutputsCapturedException { Complete: true })
            {
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The operator rejects these inputs, or needs data it cannot have here: the run will tell.
                return null;
            }
            return capture.Outputs;
        }
        finally
        {
            foreach (var tensor in owned) tensor.Dispose();
        }
    }

    /// <summary>
    /// Runs a foldable node for real when its inputs are constants or values found on the way (a Shape node
    /// needs only its input's shape), keeping small outputs as values; null when it does not apply.
    /// </summary>
    private static (ElementType, int[])?[]? Evaluate(GraphNode node, IOperator op, Dictionary<string, (ElementType Type, int[] Shape)> known,
        Dictionary<string, Tensor> values, PlaceholderMemory placeholders, ConstantEvaluator evaluator)
    {
        if (!ConstantFolding.FoldableOps.Contains(node.OpType)) return null;
        var shapeOnly = node.OpType == "Shape";
        var inputs = new Tensor?[node.Inputs.Length];
        var owned = new List<Tensor>();
        try
        {
            for (var i = 0; i < inputs.Length; i++)
            {
                var descriptor = node.Inputs[i];
                if (descriptor is null) continue;
                if (values.TryGetValue(descriptor.Name, out var value)) inputs[i] = value;
                else if (descriptor.IsWeight && (descriptor.Location!.Inline is not null || descriptor.Location.Length <= WeightLocation.MaxInlineBytes))
                    inputs[i] = evaluator.Read(descriptor, owned);
                else if (shapeOnly && !descriptor.IsWeight && known.TryGetValue(descriptor.Name, out var activation) &&
                         placeholders.Reserve(activation.Type, activation.Shape))
                    inputs[i] = placeholders.Input(activation.Type, activation.Shape, owned);
                else return null;
            }
            Tensor[] outputs;
            try
            {
                outputs = evaluator.Run(node, op, inputs);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return null;
            }
            var result = new (ElementType, int[])?[outputs.Length];
            for (var k = 0; k < outputs.Length; k++)
            {
                result[k] = (outputs[k].ElementType, outputs[k].Shape);
                if (outputs[k].ByteCount <= WeightLocation.MaxInlineBytes && !values.ContainsKey(node.Outputs[k].Name))
                    values[node.Outputs[k].Name] = outputs[k];
                else outputs[k].Dispose();
            }
            return result;
        }
        finally
        {
            foreach (var tensor in owned) tensor.Dispose();
        }
    }

    private static Exception Unwrap(Exception e)
    {
        while (e is AggregateException { InnerException: { } inner }) e = inner;
        return e is OperatorException { InnerException: OutputsCapturedException captured } ? captured : e;
    }

    /// <summary>
    /// A model.txt graph input has no declared type: float32, unless it is used as indices (Gather's
    /// input 1, directly or through Reshape/Flatten/Squeeze/Unsqueeze), as a text encoder's token ids are.
    /// </summary>
    private static ElementType GuessInputType(ModelGraph graph, string input)
    {
        var names = new HashSet<string>(StringComparer.Ordinal) { input };
        foreach (var node in graph.Nodes)
        {
            if (node.OpType == "Gather" && node.Inputs.Length > 1 && node.Inputs[1] is { } indices && names.Contains(indices.Name))
                return ElementType.Int64;
            if (node.OpType is "Reshape" or "Flatten" or "Squeeze" or "Unsqueeze" && node.Inputs[0] is { } data && names.Contains(data.Name))
                names.Add(node.Outputs[0].Name);
        }
        return ElementType.Float32;
    }

    /// <summary>Records the outputs a node declares; stops a one-output node at once.</summary>
    private sealed class Capture(int count, List<Tensor> owned) : IOutputCapture
    {
        // Activations may be far larger than the constants the evaluator's allocator admits: the session's default budget.
        private readonly NativeAllocator _allocator = new();

        public (ElementType, int[])?[] Outputs { get; } = new (ElementType, int[])?[count];

        public Tensor Declare(int index, ElementType type, ReadOnlySpan<int> shape, Quantization? quantization)
        {
            Outputs[index] = (type, shape.ToArray());
            if (count == 1) throw new OutputsCapturedException(complete: true);
            // Several outputs (Split, TopK): the operator runs to the end, into real (accounted, freed) tensors.
            var tensor = Tensor.Allocate(type, shape, _allocator, quantization);
            owned.Add(tensor);
            return tensor;
        }
    }

    /// <summary>
    /// The zero-filled block read-only placeholders point into: grown (between nodes) to the largest input,
    /// freed at the end. Its pages are never written, so they never become resident.
    /// </summary>
    private sealed unsafe class PlaceholderMemory : IDisposable
    {
        private void* _pointer;
        private nuint _length;

        /// <summary>
        /// Makes the block large enough for a <paramref name="type"/> tensor of <paramref name="shape"/>; false (and no block)
        /// when that tensor is larger than a session would allocate by default, or the system has no block of its size.
        /// </summary>
        public bool Reserve(ElementType type, int[] shape)
        {
            if (!TensorLimit.Fits(type, shape, TensorLimit.DefaultMaxBytes)) return false;
            var bytes = Bytes(type, shape);
            if (bytes <= _length) return true;
            Dispose();
            try
            {
                _pointer = NativeMemory.AllocZeroed(bytes);
            }
            catch (OutOfMemoryException)
            {
                return false;
            }
            _length = bytes;
            return true;
        }

        /// <summary>A placeholder over the block (reserved for it beforehand); its memory is zero and must stay so.</summary>
        public Tensor Input(ElementType type, int[] shape, List<Tensor> owned)
        {
            if (Bytes(type, shape) > _length) throw new InvalidOperationException("placeholder block not reserved");
            var tensor = Tensor.Wrap(type, shape, _pointer);
            owned.Add(tensor);
            return tensor;
        }

        private static nuint Bytes(ElementType type, int[] shape) =>
            (nuint)TensorLimit.Bytes(type, shape) + (nuint)NativeAllocator.OverAllocationBytes + 64;

        public void Dispose()
        {
            NativeMemory.Free(_pointer);
            _pointer = null;
            _length = 0;
        }
    }
}
