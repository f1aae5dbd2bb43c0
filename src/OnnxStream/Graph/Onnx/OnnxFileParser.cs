using Google.Protobuf;
using Onnx;

namespace OnnxStream.Graph.OnnxFormat;

/// <summary>A node of the file: the NodeProto, and the tensors of its attributes that were streamed (left in the file).</summary>
internal sealed record OnnxNodeRecord(int Index, NodeProto Proto, Dictionary<string, TensorRecord>? StreamedTensors);

/// <summary>Everything the loader needs from a .onnx file, tensor data excepted.</summary>
internal sealed class OnnxFileContents
{
    public long IrVersion { get; set; }
    public List<OperatorSetIdProto> Opsets { get; } = [];
    public List<OnnxNodeRecord> Nodes { get; } = [];
    public Dictionary<string, TensorRecord> Initializers { get; } = new(StringComparer.Ordinal);
    public List<ValueInfoProto> Inputs { get; } = [];
    public List<ValueInfoProto> Outputs { get; } = [];
    public List<ValueInfoProto> ValueInfo { get; } = [];
    public HashSet<(string Domain, string Name)> Functions { get; } = [];
    public List<string> SparseInitializers { get; } = [];
    public bool HasGraph { get; set; }
}

/// <summary>
/// Walks a .onnx file's protobuf wire format. Initializers (GraphProto field 5) are read field by field
/// and their raw_data is located (file offset and length) and skipped, never read; every other part of
/// the graph (nodes, inputs, outputs, value_info) is small and is parsed by the generated classes from
/// its slice. A node larger than <see cref="LargeNodeBytes"/> (a Constant holding a big tensor) is also
/// walked field by field so its tensor stays in the file.
/// </summary>
internal static class OnnxFileParser
{
    /// <summary>Nodes larger than this are streamed rather than read whole.</summary>
    public const int LargeNodeBytes = 64 * 1024;

    private const int ModelIrVersion = 1, ModelGraph = 7, ModelOpsetImport = 8, ModelFunctions = 25;
    private const int GraphNode = 1, GraphInitializer = 5, GraphInput = 11, GraphOutput = 12, GraphValueInfo = 13, GraphSparseInitializer = 15;
    private const int NodeAttribute = 5;
    private const int AttributeTensor = 5;

    public static OnnxFileContents Parse(string path)
    {
        using var reader = new ProtoStreamReader(path);
        var contents = new OnnxFileContents();
        var end = reader.Length;
        while (reader.Position < end)
        {
            var (field, wire) = reader.ReadTag(end);
            switch (field)
            {
                case ModelIrVersion when wire == WireType.Varint:
                    contents.IrVersion = (long)reader.ReadVarint(end);
                    break;
                case ModelOpsetImport when wire == WireType.LengthDelimited:
                    contents.Opsets.Add(ParseMessage(OperatorSetIdProto.Parser, reader, end, "opset_import"));
                    break;
                case ModelFunctions when wire == WireType.LengthDelimited:
                    var function = ParseMessage(FunctionProto.Parser, reader, end, "a model-local function");
                    contents.Functions.Add((function.Domain, function.Name));
                    break;
                case ModelGraph when wire == WireType.LengthDelimited:
                    if (contents.HasGraph) throw reader.Malformed("ModelProto holds two graphs");
                    contents.HasGraph = true;
                    ParseGraph(reader, reader.ReadLengthAndGetEnd(end), contents);
                    break;
                default:
                    reader.SkipField(wire, end);
                    break;
            }
        }
        if (!contents.HasGraph) throw new ModelFormatException($"{path}: the file holds no graph (is it an ONNX model?)");
        return contents;
    }

    private static void ParseGraph(ProtoStreamReader reader, long end, OnnxFileContents contents)
    {
        while (reader.Position < end)
        {
            var fieldStart = reader.Position;
            var (field, wire) = reader.ReadTag(end);
            if (wire != WireType.LengthDelimited || field is not (GraphNode or GraphInitializer or GraphInput or GraphOutput or GraphValueInfo or GraphSparseInitializer))
            {
                reader.SkipField(wire, end);
                continue;
            }
            var fieldEnd = reader.ReadLengthAndGetEnd(end);
            switch (field)
            {
                case GraphNode:
                    var index = contents.Nodes.Count;
                    contents.Nodes.Add(fieldEnd - reader.Position > LargeNodeBytes
                        ? ParseLargeNode(reader, fieldEnd, index)
                        : new OnnxNodeRecord(index, ParseSlice(NodeProto.Parser, reader, fieldEnd, $"node #{index}"), null));
                    break;
                case GraphInitializer:
                    var tensor = ParseTensor(reader, fieldEnd, $"initializer at byte {fieldStart}");
                    tensor.Origin = () => $"initializer '{tensor.Name}'";
                    if (!contents.Initializers.TryAdd(tensor.Name, tensor))
                        throw new ModelFormatException($"{reader.Path}: two initializers are named '{tensor.Name}'");
                    break;
                case GraphInput:
                    contents.Inputs.Add(ParseSlice(ValueInfoProto.Parser, reader, fieldEnd, "a graph input"));
                    break;
                case GraphOutput:
                    contents.Outputs.Add(ParseSlice(ValueInfoProto.Parser, reader, fieldEnd, "a graph output"));
                    break;
                case GraphValueInfo:
                    contents.ValueInfo.Add(ParseSlice(ValueInfoProto.Parser, reader, fieldEnd, "a value_info"));
                    break;
                case GraphSparseInitializer:
                    var name = $"at byte {fieldStart}";
                    if (fieldEnd - reader.Position <= LargeNodeBytes)
                        name = $"'{ParseSlice(SparseTensorProto.Parser, reader, fieldEnd, "a sparse initializer").Values?.Name}'";
                    contents.SparseInitializers.Add(name);
                    reader.Seek(fieldEnd);
                    break;
            }
            if (reader.Position != fieldEnd) throw reader.Malformed($"field {field} at byte {fieldStart} was not read to its end");
        }
    }

    /// <summary>Reads a TensorProto field by field; raw_data and typed data are located, not read.</summary>
    public static TensorRecord ParseTensor(ProtoStreamReader reader, long end, string what)
    {
        var tensor = new TensorRecord();
        while (reader.Position < end)
        {
            var (field, wire) = reader.ReadTag(end);
            switch (field, wire)
            {
                case (1, WireType.Varint): // dims
                    tensor.Dims.Add((long)reader.ReadVarint(end));
                    break;
                case (1, WireType.LengthDelimited): // packed dims
                    var dimsEnd = reader.ReadLengthAndGetEnd(end);
                    while (reader.Position < dimsEnd) tensor.Dims.Add((long)reader.ReadVarint(dimsEnd));
                    break;
                case (2, WireType.Varint): // data_type
                    tensor.DataType = (int)reader.ReadVarint(end);
                    break;
                case (3, _): // segment
                    tensor.HasSegment = true;
                    reader.SkipField(wire, end);
                    break;
                case (4 or 5 or 7 or 10 or 11, _): // float_data, int32_data, int64_data, double_data, uint64_data
                    long start;
                    if (wire == WireType.LengthDelimited)
                    {
                        var segmentEnd = reader.ReadLengthAndGetEnd(end);
                        start = reader.Position;
                        reader.Seek(segmentEnd);
                    }
                    else
                    {
                        start = reader.Position;
                        reader.SkipField(wire, end);
                    }
                    tensor.Segments.Add(new FieldSegment(field, wire, start, reader.Position - start));
                    break;
                case (6, _): // string_data
                    tensor.HasStrings = true;
                    reader.SkipField(wire, end);
                    break;
                case (8, WireType.LengthDelimited): // name
                    tensor.Name = System.Text.Encoding.UTF8.GetString(reader.ReadLengthDelimited(end));
                    break;
                case (9, WireType.LengthDelimited): // raw_data: where it is, not what it is
                    var rawEnd = reader.ReadLengthAndGetEnd(end);
                    tensor.RawOffset = reader.Position;
                    tensor.RawLength = rawEnd - reader.Position;
                    reader.Seek(rawEnd);
                    break;
                case (13, WireType.LengthDelimited): // external_data
                    var entry = ParseMessage(StringStringEntryProto.Parser, reader, end, $"external_data of {what}");
                    tensor.ExternalData.Add((entry.Key, entry.Value));
                    break;
                case (14, WireType.Varint): // data_location
                    tensor.IsExternal = reader.ReadVarint(end) == (ulong)TensorProto.Types.DataLocation.External;
                    break;
                default:
                    reader.SkipField(wire, end);
                    break;
            }
        }
        if (reader.Position != end) throw reader.Malformed($"{what} overruns its end at byte {end}");
        return tensor;
    }

    /// <summary>
    /// A node too large to read whole: every field but the big attributes is copied and parsed; a big
    /// attribute's TENSOR value is streamed (its data stays in the file).
    /// </summary>
    private static OnnxNodeRecord ParseLargeNode(ProtoStreamReader reader, long end, int index)
    {
        using var kept = new MemoryStream();
        var streamed = new Dictionary<string, TensorRecord>(StringComparer.Ordinal);
        var bigAttributes = new List<AttributeProto>();
        while (reader.Position < end)
        {
            var fieldStart = reader.Position;
            var (field, wire) = reader.ReadTag(end);
            if (field == NodeAttribute && wire == WireType.LengthDelimited)
            {
                var attributeEnd = reader.ReadLengthAndGetEnd(end);
                if (attributeEnd - reader.Position > LargeNodeBytes)
                {
                    var (attribute, tensor) = ParseLargeAttribute(reader, attributeEnd, index);
                    bigAttributes.Add(attribute);
                    if (tensor is not null) streamed[attribute.Name] = tensor;
                    continue;
                }
                reader.Seek(attributeEnd);
            }
            else reader.SkipField(wire, end);
            var bytes = reader.ReadRange(fieldStart, reader.Position);
            kept.Write(bytes);
        }
        NodeProto node;
        try
        {
            node = NodeProto.Parser.ParseFrom(kept.ToArray());
        }
        catch (InvalidProtocolBufferException e)
        {
            throw reader.Malformed($"node #{index}: {e.Message}");
        }
        node.Attribute.AddRange(bigAttributes);
        return new OnnxNodeRecord(index, node, streamed);
    }

    private static (AttributeProto, TensorRecord?) ParseLargeAttribute(ProtoStreamReader reader, long end, int node)
    {
        using var kept = new MemoryStream();
        TensorRecord? tensor = null;
        while (reader.Position < end)
        {
            var fieldStart = reader.Position;
            var (field, wire) = reader.ReadTag(end);
            if (field == AttributeTensor && wire == WireType.LengthDelimited)
            {
                var tensorEnd = reader.ReadLengthAndGetEnd(end);
                tensor = ParseTensor(reader, tensorEnd, $"an attribute tensor of node #{node}");
                continue;
            }
            reader.SkipField(wire, end);
            kept.Write(reader.ReadRange(fieldStart, reader.Position));
        }
        try
        {
            return (AttributeProto.Parser.ParseFrom(kept.ToArray()), tensor);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw reader.Malformed($"an attribute of node #{node}: {e.Message}");
        }
    }

    private static T ParseMessage<T>(MessageParser<T> parser, ProtoStreamReader reader, long end, string what)
        where T : IMessage<T> =>
        ParseSlice(parser, reader, reader.ReadLengthAndGetEnd(end), what);

    /// <summary>Parses the bytes from the current position to <paramref name="end"/> with a generated parser.</summary>
    private static T ParseSlice<T>(MessageParser<T> parser, ProtoStreamReader reader, long end, string what)
        where T : IMessage<T>
    {
        var at = reader.Position;
        try
        {
            return parser.ParseFrom(reader.ReadSpan(end - at, end));
        }
        catch (InvalidProtocolBufferException e)
        {
            throw reader.Malformed($"{what} at byte {at}: {e.Message}");
        }
    }
}
