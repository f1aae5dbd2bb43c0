using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace OnnxStream.ModelBuilder;

/// <summary>The element types the builder writes (values are ONNX's TensorProto.DataType).</summary>
public enum OnnxElementType
{
    /// <summary>float32.</summary>
    Float = 1,

    /// <summary>int64.</summary>
    Int64 = 7,

    /// <summary>float16.</summary>
    Float16 = 10,
}

/// <summary>A graph input or output: name, element type and shape.</summary>
public sealed record OnnxValueInfo(string Name, OnnxElementType ElementType, IReadOnlyList<long> Shape)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Name} {ElementType}[{string.Join(',', Shape)}]";
}

/// <summary>
/// Writes an ONNX graph op by op, naming nodes and parameters the way a PyTorch export does
/// (<c>/down_blocks.0/resnets.0/conv1/Conv</c>, <c>down_blocks.0.resnets.0.conv1.weight</c>) from the
/// current <see cref="Scope"/>. Parameters are declared with their shape and a <see cref="WeightInit"/>;
/// their values are made only by <see cref="OnnxModelWriter"/>, one tensor at a time, so a graph of
/// billions of parameters is described in a few megabytes.
/// </summary>
public sealed class OnnxGraphBuilder
{
    private readonly GraphProto _graph;
    private readonly List<ParameterDeclaration> _parameters = [];
    private readonly List<string> _scopes = [];
    private readonly HashSet<string> _usedNames = new(StringComparer.Ordinal);
    private readonly List<OnnxValueInfo> _inputs = [];
    private readonly List<OnnxValueInfo> _outputs = [];

    /// <summary>A graph whose floating-point values (activations, parameters, constants) are <paramref name="floatType"/>.</summary>
    public OnnxGraphBuilder(string name, OnnxElementType floatType = OnnxElementType.Float, int opset = 14)
    {
        if (floatType is not (OnnxElementType.Float or OnnxElementType.Float16))
            throw new ArgumentException($"The float type must be Float or Float16, not {floatType}.", nameof(floatType));
        _graph = new GraphProto { Name = name };
        FloatType = floatType;
        Opset = opset;
    }

    /// <summary>The type of every floating-point value in the graph.</summary>
    public OnnxElementType FloatType { get; }

    /// <summary>The default-domain opset the model imports.</summary>
    public int Opset { get; }

    /// <summary>The graph's inputs, in order.</summary>
    public IReadOnlyList<OnnxValueInfo> Inputs => _inputs;

    /// <summary>The graph's outputs, in order.</summary>
    public IReadOnlyList<OnnxValueInfo> Outputs => _outputs;

    /// <summary>The number of nodes so far.</summary>
    public int NodeCount => _graph.Node.Count;

    /// <summary>The number of parameter tensors (initializers) so far.</summary>
    public int ParameterTensorCount => _parameters.Count;

    /// <summary>The number of parameter elements so far (constants such as shapes and masks are not parameters).</summary>
    public long ParameterCount => _parameters.Sum(p => p.ElementCount);

    /// <summary>The bytes the parameters take when written.</summary>
    public long ParameterBytes => ParameterCount * ElementSize(FloatType);

    internal GraphProto Graph => _graph;

    internal IReadOnlyList<ParameterDeclaration> Parameters => _parameters;

    /// <summary>Enters a module: node names get <c>/name</c>, parameter names <c>name.</c>, until the result is disposed.</summary>
    public IDisposable Scope(string name)
    {
        _scopes.Add(name);
        return new ScopeExit(this, _scopes.Count);
    }

    /// <summary>Declares a graph input.</summary>
    public string Input(string name, OnnxElementType type, params long[] shape)
    {
        Claim(name);
        _graph.Input.Add(ValueInfo(name, type, shape));
        _inputs.Add(new OnnxValueInfo(name, type, shape));
        return name;
    }

    /// <summary>Makes <paramref name="value"/> a graph output called <paramref name="name"/> (renaming it where it is produced and used).</summary>
    public void Output(string value, string name, OnnxElementType type, params long[] shape)
    {
        if (value != name)
        {
            Claim(name);
            var producer = _graph.Node.LastOrDefault(n => n.Output.Contains(value));
            if (producer is null) Node("Identity", [value], name);
            else
                foreach (var node in _graph.Node)
                {
                    Rename(node.Output, value, name);
                    Rename(node.Input, value, name);
                }
        }
        _graph.Output.Add(ValueInfo(name, type, shape));
        _outputs.Add(new OnnxValueInfo(name, type, shape));
    }

    /// <summary>Declares a parameter <c>scope.name</c> of <see cref="FloatType"/>, made by <paramref name="init"/> when written.</summary>
    public string Parameter(string name, long[] shape, WeightInit init)
    {
        var fullName = string.Join('.', _scopes.Append(name));
        Claim(fullName);
        var header = new TensorProto { Name = fullName, DataType = (int)FloatType };
        header.Dims.AddRange(shape);
        var count = shape.Aggregate(1L, (a, d) => checked(a * d));
        _parameters.Add(new ParameterDeclaration(header, init, count));
        return fullName;
    }

    /// <summary>A Constant node of <see cref="FloatType"/> (a scalar when <paramref name="shape"/> is empty).</summary>
    public string Constant(float[] values, params long[] shape) =>
        FloatType == OnnxElementType.Float16
            ? ConstantNode(OnnxElementType.Float16, MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()), shape)
            : Float32Constant(values, shape);

    /// <summary>A float32 Constant node whatever <see cref="FloatType"/> is (Resize scales; what PyTorch computes in float32 in float16 models).</summary>
    public string Float32Constant(float[] values, params long[] shape) => ConstantNode(OnnxElementType.Float, MemoryMarshal.AsBytes(values.AsSpan()), shape);

    /// <summary>An int64 Constant node (a scalar when <paramref name="shape"/> is empty).</summary>
    public string Constant(long[] values, params long[] shape) => ConstantNode(OnnxElementType.Int64, MemoryMarshal.AsBytes(values.AsSpan()), shape);

    /// <summary>A 1-D int64 constant (shapes, axes, slice bounds).</summary>
    public string Ints(params long[] values) => Constant(values, values.Length);

    /// <summary>A scalar constant of <see cref="FloatType"/>.</summary>
    public string Scalar(float value) => Constant([value]);

    /// <summary>A node with one output; returns the output's name.</summary>
    public string Node(string opType, string[] inputs, params OnnxAttribute[] attributes) => Node(opType, inputs, 1, attributes)[0];

    /// <summary>A node with <paramref name="outputCount"/> outputs; returns their names.</summary>
    public string[] Node(string opType, string[] inputs, int outputCount, params OnnxAttribute[] attributes)
    {
        var name = UniqueNodeName(opType);
        var outputs = Enumerable.Range(0, outputCount).Select(i => $"{name}_output_{i}").ToArray();
        AddNode(opType, name, inputs, outputs, attributes);
        return outputs;
    }

    /// <summary>The bytes one element of <paramref name="type"/> takes.</summary>
    public static int ElementSize(OnnxElementType type) => type switch
    {
        OnnxElementType.Float => 4,
        OnnxElementType.Float16 => 2,
        OnnxElementType.Int64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    private void Node(string opType, string[] inputs, string output) => AddNode(opType, UniqueNodeName(opType), inputs, [output], []);

    private void AddNode(string opType, string name, string[] inputs, string[] outputs, OnnxAttribute[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes.Select(a => a.Proto));
        _graph.Node.Add(node);
    }

    private string ConstantNode(OnnxElementType type, ReadOnlySpan<byte> data, long[] shape)
    {
        var count = shape.Aggregate(1L, (a, d) => a * d);
        if (count * ElementSize(type) != data.Length)
            throw new ArgumentException($"A constant of shape [{string.Join(',', shape)}] needs {count} values, not {data.Length / ElementSize(type)}.");
        var tensor = new TensorProto { DataType = (int)type, RawData = ByteString.CopyFrom(data) };
        tensor.Dims.AddRange(shape);
        return Node("Constant", [], OnnxAttribute.Tensor("value", tensor));
    }

    private string UniqueNodeName(string opType)
    {
        var stem = "/" + string.Concat(_scopes.Select(s => s + "/")) + opType;
        var name = stem;
        for (var k = 1; !_usedNames.Add(name); k++) name = $"{stem}_{k}";
        return name;
    }

    private void Claim(string name)
    {
        if (!_usedNames.Add(name)) throw new ArgumentException($"The name '{name}' is already used in graph '{_graph.Name}'.", nameof(name));
    }

    private static void Rename(Google.Protobuf.Collections.RepeatedField<string> names, string from, string to)
    {
        for (var i = 0; i < names.Count; i++)
            if (names[i] == from) names[i] = to;
    }

    private static ValueInfoProto ValueInfo(string name, OnnxElementType type, long[] shape)
    {
        var tensorShape = new TensorShapeProto();
        foreach (var dim in shape) tensorShape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dim });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = tensorShape } } };
    }

    private sealed class ScopeExit(OnnxGraphBuilder builder, int depth) : IDisposable
    {
        public void Dispose()
        {
            if (builder._scopes.Count != depth) throw new InvalidOperationException("Scopes must be left in the reverse order they were entered.");
            builder._scopes.RemoveAt(depth - 1);
        }
    }
}

/// <summary>A parameter: its initializer without data, how to make the data, and its element count.</summary>
internal sealed record ParameterDeclaration(TensorProto Header, WeightInit Init, long ElementCount);
