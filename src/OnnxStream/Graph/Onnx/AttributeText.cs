using System.Globalization;
using System.Runtime.InteropServices;
using Onnx;
using OnnxStream.Tensors;
using AttributeType = Onnx.AttributeProto.Types.AttributeType;

namespace OnnxStream.Graph.OnnxFormat;

/// <summary>
/// ONNX attributes in the model.txt text form: INT decimal, FLOAT as Python's <c>str(float)</c> writes it
/// (what the original converter writes, e.g. <c>9.999999747378752e-06</c>; it reads back to the same float), STRING as is,
/// INTS/FLOATS/STRINGS comma-separated, a TENSOR as its values comma-separated (a scalar as its one
/// value). A TENSOR attribute also gets <c>NAME.dtype</c> (float32, float16, int64, int32, uint8, bool)
/// so an operator such as ConstantOfShape can give its output the right element type.
/// </summary>
internal static class AttributeText
{
    /// <summary>Suffix of the companion attribute holding a TENSOR attribute's element type.</summary>
    public const string DTypeSuffix = ".dtype";

    public static NodeAttributes Convert(OnnxNodeRecord node, string onnxPath, ModelFolder folder, Func<string> where)
    {
        if (node.Proto.Attribute.Count == 0) return NodeAttributes.Empty;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var attribute in node.Proto.Attribute)
        {
            if (!string.IsNullOrEmpty(attribute.RefAttrName))
                throw new ModelFormatException($"{where()}: attribute '{attribute.Name}' refers to a function attribute; functions are not supported");
            string text;
            switch (TypeOf(attribute, node))
            {
                case AttributeType.Int: text = attribute.I.ToString(CultureInfo.InvariantCulture); break;
                case AttributeType.Float: text = Float(attribute.F); break;
                case AttributeType.String: text = attribute.S.ToStringUtf8(); break;
                case AttributeType.Ints: text = string.Join(',', attribute.Ints.Select(i => i.ToString(CultureInfo.InvariantCulture))); break;
                case AttributeType.Floats: text = string.Join(',', attribute.Floats.Select(Float)); break;
                case AttributeType.Strings: text = string.Join(',', attribute.Strings.Select(s => s.ToStringUtf8())); break;
                case AttributeType.Tensor:
                    var record = Tensor(node, attribute, where);
                    var (type, valueText) = TensorValues(record, onnxPath, folder, where(), attribute.Name);
                    text = valueText;
                    values[attribute.Name + DTypeSuffix] = TypeName(type);
                    break;
                case AttributeType.Graph or AttributeType.Graphs:
                    throw new ModelFormatException($"{where()}: attribute '{attribute.Name}' is a subgraph; control flow (If, Loop, Scan) is not supported");
                case var other:
                    throw new ModelFormatException($"{where()}: attribute '{attribute.Name}' has type {other}, which is not supported");
            }
            if (!values.TryAdd(attribute.Name, text))
                throw new ModelFormatException($"{where()}: attribute '{attribute.Name}' is given twice");
        }
        return new NodeAttributes(values);
    }

    /// <summary>The attribute's tensor: streamed (left in the file) or parsed with the node.</summary>
    public static TensorRecord Tensor(OnnxNodeRecord node, AttributeProto attribute, Func<string> where)
    {
        if (node.StreamedTensors?.TryGetValue(attribute.Name, out var streamed) == true)
        {
            streamed.Origin = () => $"{where()}: attribute '{attribute.Name}'";
            return streamed;
        }
        if (attribute.T is null) throw new ModelFormatException($"{where()}: TENSOR attribute '{attribute.Name}' has no tensor");
        return TensorRecord.FromProto(attribute.T, () => $"{where()}: attribute '{attribute.Name}'");
    }

    /// <summary>The attribute's type; old models leave it out, and then the field that is set says it.</summary>
    public static AttributeType TypeOf(AttributeProto attribute, OnnxNodeRecord node)
    {
        if (attribute.Type != AttributeType.Undefined) return attribute.Type;
        if (attribute.HasF) return AttributeType.Float;
        if (attribute.HasI) return AttributeType.Int;
        if (attribute.HasS) return AttributeType.String;
        if (attribute.T is not null || node.StreamedTensors?.ContainsKey(attribute.Name) == true) return AttributeType.Tensor;
        if (attribute.G is not null) return AttributeType.Graph;
        if (attribute.Floats.Count > 0) return AttributeType.Floats;
        if (attribute.Strings.Count > 0) return AttributeType.Strings;
        if (attribute.Graphs.Count > 0) return AttributeType.Graphs;
        if (attribute.Tensors.Count > 0) return AttributeType.Tensors;
        return AttributeType.Ints;
    }

    private static string Float(float value) => Conversion.PythonFloat.Format(value);

    /// <summary>The model.txt name of an element type.</summary>
    public static string TypeName(ElementType type) => type switch
    {
        ElementType.Float32 => "float32",
        ElementType.Float16 => "float16",
        ElementType.Int64 => "int64",
        ElementType.Int32 => "int32",
        ElementType.UInt8 => "uint8",
        _ => "bool",
    };

    private static (ElementType, string) TensorValues(TensorRecord record, string onnxPath, ModelFolder folder, string where, string name)
    {
        var weight = TensorMaterializer.ToWeight(record, name, onnxPath, folder);
        if (weight is null) return (TensorMaterializer.ElementTypeOf(record.DataType)!.Value, "");
        var bytes = WeightBytes.Read(weight, where);
        var type = weight.WeightType!.Value;
        IEnumerable<string> texts = type switch
        {
            ElementType.Float32 => MemoryMarshal.Cast<byte, float>(bytes).ToArray().Select(Float),
            ElementType.Float16 => MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => Float((float)h)),
            ElementType.Int64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray().Select(v => v.ToString(CultureInfo.InvariantCulture)),
            ElementType.Int32 => MemoryMarshal.Cast<byte, int>(bytes).ToArray().Select(v => v.ToString(CultureInfo.InvariantCulture)),
            ElementType.Bool => bytes.Select(b => b != 0 ? "1" : "0"),
            _ => bytes.Select(b => b.ToString(CultureInfo.InvariantCulture)),
        };
        return (type, string.Join(',', texts));
    }
}

/// <summary>Reads a small weight's bytes (inline, or a file range of at most <see cref="WeightLocation.MaxInlineBytes"/>).</summary>
internal static class WeightBytes
{
    public static byte[] Read(TensorDescriptor weight, string where)
    {
        var location = weight.Location ?? throw new ArgumentException($"'{weight.Name}' is not a weight.", nameof(weight));
        if (location.Inline is { } inline) return inline;
        if (location.Length > WeightLocation.MaxInlineBytes)
            throw new ModelFormatException($"{where}: tensor '{weight.Name}' ({location.Length} bytes) is too large to read at load (limit {WeightLocation.MaxInlineBytes})");
        using var handle = File.OpenHandle(location.Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var bytes = new byte[location.Length];
        var done = 0;
        while (done < bytes.Length)
        {
            var read = RandomAccess.Read(handle, bytes.AsSpan(done), location.Offset + done);
            if (read == 0) throw new ModelFormatException($"{location.Path}: the file ends inside tensor '{weight.Name}' (truncated file?)");
            done += read;
        }
        return bytes;
    }
}
