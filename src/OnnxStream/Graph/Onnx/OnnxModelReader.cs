using Onnx;
using OnnxStream.Graph.Passes;
using OnnxStream.Kernels;
using OnnxStream.Operators;

namespace OnnxStream.Graph.OnnxFormat;

/// <summary>
/// Reads a .onnx file into a <see cref="ModelGraph"/> without reading its weights: each initializer
/// becomes a weight that points at its raw_data range in the file (or in its external data file), so a
/// model of gigabytes loads in a few megabytes. Then: Constant nodes become weights, Identity and
/// inference-mode Dropout nodes are removed, shape arithmetic on constants is folded, and nodes that no
/// graph output needs are dropped.
/// </summary>
internal static class OnnxModelReader
{
    /// <summary>Reads <paramref name="path"/>.</summary>
    /// <param name="path">The .onnx file.</param>
    /// <param name="registry">Operators that constant folding may run.</param>
    /// <param name="simplify">
    /// false: the graph as the file has it, in file order (Identity, Dropout and shape arithmetic kept; only
    /// Constant nodes become weights), which is what a converter reproducing the original needs.
    /// </param>
    /// <param name="options">Load options; null for the defaults (external data only inside the model's folder).</param>
    /// <exception cref="ModelFormatException">The file is malformed, truncated, uses what is not supported or names external data outside its folder; the message says where.</exception>
    public static ModelGraph Read(string path, OperatorRegistry? registry = null, bool simplify = true, ModelLoadOptions? options = null)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No ONNX model at {path}.", path);
        var folder = ModelFolder.Of(path, options?.AllowWeightsOutsideModelFolder ?? false);
        registry ??= OperatorRegistry.Default;
        var contents = OnnxFileParser.Parse(path);
        var fileName = Path.GetFileName(path);

        if (contents.SparseInitializers.Count > 0)
            throw new ModelFormatException($"{path}: sparse initializer {contents.SparseInitializers[0]}: sparse tensors are not supported");
        foreach (var opset in contents.Opsets)
            if (opset.Domain is "" or "ai.onnx" && opset.Version is > 0 and < 7)
                throw new ModelFormatException($"{path}: opset {opset.Version} is not supported (7 or later)");

        // Declared shapes: graph inputs, outputs and value_info (0 for a symbolic or unknown dimension).
        var declared = new Dictionary<string, ValueInfoProto>(StringComparer.Ordinal);
        foreach (var info in contents.ValueInfo.Concat(contents.Outputs).Concat(contents.Inputs))
            declared[info.Name] = info;
        var activations = new Dictionary<string, TensorDescriptor>(StringComparer.Ordinal);
        TensorDescriptor Activation(string name)
        {
            if (!activations.TryGetValue(name, out var descriptor))
            {
                var info = declared.GetValueOrDefault(name);
                var shape = info is null ? [] : ShapeOf(info);
                if (!Shapes.FitsInTensor(shape))
                    throw new ModelFormatException($"{path}: '{name}' is declared with shape ({string.Join(',', shape)}), more than {int.MaxValue} elements, more than a tensor holds");
                activations[name] = descriptor = new TensorDescriptor(name, shape)
                {
                    ActivationType = info?.Type?.TensorType is { } tensorType ? TensorMaterializer.ElementTypeOf(tensorType.ElemType) : null,
                    HasStaticShape = info?.Type?.TensorType?.Shape is not null && shape.All(d => d > 0),
                };
            }
            return descriptor;
        }

        // Node names: as given, or invented (OpType_index); made unique.
        var nodeNames = new string[contents.Nodes.Count];
        var usedNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in contents.Nodes)
        {
            var name = string.IsNullOrEmpty(node.Proto.Name) ? $"{node.Proto.OpType}_{node.Index}" : node.Proto.Name;
            if (!usedNames.Add(name))
            {
                var unique = $"{name}_{node.Index}";
                for (var k = 2; !usedNames.Add(unique); k++) unique = $"{name}_{node.Index}_{k}";
                name = unique;
            }
            nodeNames[node.Index] = name;
        }
        string Where(OnnxNodeRecord node) => $"{path}: node #{node.Index} '{nodeNames[node.Index]}' ({node.Proto.OpType})";

        // Constants: initializers and Constant nodes (whose data stays where it is until a node uses it).
        var constants = new Dictionary<string, TensorRecord>(contents.Initializers, StringComparer.Ordinal);
        foreach (var node in contents.Nodes.Where(IsConstantNode))
        {
            if (node.Proto.Output.Count != 1 || node.Proto.Output[0].Length == 0)
                throw new ModelFormatException($"{Where(node)}: a Constant must have one output");
            if (!constants.TryAdd(node.Proto.Output[0], ConstantValue(node, path, () => Where(node))))
                throw new ModelFormatException($"{Where(node)}: '{node.Proto.Output[0]}' is already an initializer or another Constant");
        }
        var weights = new Dictionary<string, TensorDescriptor?>(StringComparer.Ordinal);
        TensorDescriptor? Weight(string name)
        {
            if (!weights.TryGetValue(name, out var weight))
                weights[name] = weight = TensorMaterializer.ToWeight(constants[name], name, path, folder);
            return weight;
        }

        var graphInputs = contents.Inputs.Where(i => !constants.ContainsKey(i.Name)).Select(i => Activation(i.Name)).ToList();
        var graphInputNames = graphInputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var produced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in contents.Nodes.Where(n => !IsConstantNode(n)))
            foreach (var output in node.Proto.Output)
            {
                if (output.Length == 0) continue;
                if (!produced.Add(output))
                    throw new ModelFormatException($"{Where(node)}: tensor '{output}' is produced twice");
                if (constants.ContainsKey(output))
                    throw new ModelFormatException($"{Where(node)}: output '{output}' is also the name of an initializer or a Constant");
                if (graphInputNames.Contains(output))
                    throw new ModelFormatException($"{Where(node)}: output '{output}' is also a graph input");
            }

        var nodes = new List<GraphNode>(contents.Nodes.Count);
        foreach (var node in contents.Nodes)
        {
            if (IsConstantNode(node)) continue;
            var proto = node.Proto;
            string where() => Where(node);
            if (proto.Domain is not ("" or "ai.onnx") && !registry.TryGet(proto.OpType, out _))
                throw new ModelFormatException($"{where()}: operator domain '{proto.Domain}' is not supported (only the default ONNX domain)");
            if (contents.Functions.Contains((proto.Domain, proto.OpType)))
                throw new ModelFormatException($"{where()}: '{proto.OpType}' is a model-local function; functions are not supported");

            var inputs = new TensorDescriptor?[proto.Input.Count];
            for (var i = 0; i < inputs.Length; i++)
            {
                var name = proto.Input[i];
                if (name.Length == 0) continue; // an omitted optional input
                if (constants.ContainsKey(name))
                {
                    try
                    {
                        inputs[i] = Weight(name); // null when empty: an empty constant is an omitted input
                    }
                    catch (ModelFormatException e)
                    {
                        throw new ModelFormatException($"{e.Message} (input {i} of {nodeNames[node.Index]})", e);
                    }
                }
                else if (produced.Contains(name) || graphInputNames.Contains(name)) inputs[i] = Activation(name);
                else throw new ModelFormatException($"{where()}: input {i} '{name}' is neither produced by a node, nor an initializer, nor a graph input");
            }

            var outputCount = proto.Output.Count;
            while (outputCount > 0 && proto.Output[outputCount - 1].Length == 0) outputCount--; // omitted trailing outputs
            var outputs = new TensorDescriptor[outputCount];
            for (var k = 0; k < outputCount; k++)
                outputs[k] = Activation(proto.Output[k].Length > 0 ? proto.Output[k] : $"{nodeNames[node.Index]}:unused_output_{k}");

            nodes.Add(new GraphNode(nodeNames[node.Index], proto.OpType, inputs, outputs, AttributeText.Convert(node, path, folder, where),
                $"{fileName} node #{node.Index} '{nodeNames[node.Index]}'"));
        }

        if (contents.Outputs.Count == 0) throw new ModelFormatException($"{path}: the graph declares no outputs");
        var graphOutputs = new List<TensorDescriptor>();
        foreach (var output in contents.Outputs)
        {
            if (constants.ContainsKey(output.Name))
                throw new ModelFormatException($"{path}: graph output '{output.Name}' is a constant; constant outputs are not supported");
            if (graphInputNames.Contains(output.Name))
                throw new ModelFormatException($"{path}: graph output '{output.Name}' is a graph input; pass-through outputs are not supported");
            if (!produced.Contains(output.Name))
                throw new ModelFormatException($"{path}: graph output '{output.Name}' is not produced by any node");
            graphOutputs.Add(Activation(output.Name));
        }

        var graph = new ModelGraph(path, TopologicalSort.Sort(nodes, path), graphInputs, graphOutputs);
        if (!simplify) return graph;
        graph = LoadTimePasses.Apply(graph, registry);
        if (graph.Nodes.Count == 0) throw new ModelFormatException($"{path}: the model has no operations.");

        // Inputs and outputs are the declared ones; the passes keep the order executable.
        if (!ReferenceEquals(TopologicalSort.Sort(graph.Nodes, path), graph.Nodes))
            throw new InvalidOperationException($"{path}: a pass left the nodes out of order");
        return graph;
    }

    private static bool IsConstantNode(OnnxNodeRecord node) =>
        node.Proto.OpType == "Constant" && node.Proto.Domain is "" or "ai.onnx";

    /// <summary>The value of a Constant node (attribute value, value_float(s) or value_int(s)).</summary>
    private static TensorRecord ConstantValue(OnnxNodeRecord node, string path, Func<string> where)
    {
        if (node.Proto.Attribute.Count != 1)
            throw new ModelFormatException($"{where()}: a Constant must have exactly one attribute, found {node.Proto.Attribute.Count}");
        var attribute = node.Proto.Attribute[0];
        var proto = new TensorProto();
        switch (attribute.Name)
        {
            case "value":
                return AttributeText.Tensor(node, attribute, where);
            case "value_float":
                proto.DataType = (int)TensorProto.Types.DataType.Float;
                proto.FloatData.Add(attribute.F);
                break;
            case "value_floats":
                proto.DataType = (int)TensorProto.Types.DataType.Float;
                proto.Dims.Add(attribute.Floats.Count);
                proto.FloatData.AddRange(attribute.Floats);
                break;
            case "value_int":
                proto.DataType = (int)TensorProto.Types.DataType.Int64;
                proto.Int64Data.Add(attribute.I);
                break;
            case "value_ints":
                proto.DataType = (int)TensorProto.Types.DataType.Int64;
                proto.Dims.Add(attribute.Ints.Count);
                proto.Int64Data.AddRange(attribute.Ints);
                break;
            default:
                throw new ModelFormatException($"{where()}: Constant attribute '{attribute.Name}' is not supported (value, value_float(s), value_int(s))");
        }
        return TensorRecord.FromProto(proto, () => $"{where()}: attribute '{attribute.Name}'");
    }

    /// <summary>A declared shape: dim_value, 0 for dim_param or unknown; [] when the rank is unknown.</summary>
    private static int[] ShapeOf(ValueInfoProto info)
    {
        var shape = info.Type?.TensorType?.Shape;
        if (shape is null) return [];
        return shape.Dim.Select(d => d.HasDimValue && d.DimValue is > 0 and <= int.MaxValue ? (int)d.DimValue : 0).ToArray();
    }
}
