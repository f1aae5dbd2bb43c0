using System.Globalization;
using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Graph;

/// <summary>
/// Reads the original OnnxStream's model folder: <c>model.txt</c> (one operation per line,
/// <c>NAME:OPTYPE*input:...*output:...[*attributes]</c>) and the raw weight files beside it. Every
/// weight file's size is checked here, before anything runs.
/// </summary>
public static class ModelTextReader
{
    /// <summary>Reads a model.txt, or the model.txt of a folder.</summary>
    /// <param name="path">The model.txt or its folder.</param>
    /// <param name="options">Load options; null for the defaults (weights only inside the model folder).</param>
    /// <exception cref="ModelFormatException">The file or a weight file is malformed, or a weight is outside the model folder; the message says where.</exception>
    public static ModelGraph Read(string path, ModelLoadOptions? options = null)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "model.txt");
        if (!File.Exists(path)) throw new FileNotFoundException($"No model.txt at {path}.", path);
        var folder = ModelFolder.Of(path, options?.AllowWeightsOutsideModelFolder ?? false);
        var nodes = new List<GraphNode>();
        var names = new HashSet<string>();
        var lineNumber = 0;
        foreach (var rawLine in File.ReadLines(path))
        {
            lineNumber++;
            var line = rawLine.TrimEnd('\r');
            if (line.Length == 0) continue;
            var where = $"{path}:{lineNumber}";
            try
            {
                var node = ParseLine(line, folder, lineNumber);
                if (!names.Add(node.Name)) throw new ModelFormatException($"node name '{node.Name}' is used twice");
                nodes.Add(node with { Source = where });
            }
            catch (Exception e) when (e is ModelFormatException or FormatException)
            {
                throw new ModelFormatException($"{where}: {e.Message}", e);
            }
        }
        if (nodes.Count == 0) throw new ModelFormatException($"{path}: the model has no operations.");
        return GraphBuilder.Build(path, nodes);
    }

    private static GraphNode ParseLine(string line, ModelFolder folder, int lineNumber)
    {
        var fields = line.Split('*');
        if (fields.Length is < 3 or > 4)
            throw new ModelFormatException($"expected 3 or 4 '*'-separated fields, found {fields.Length}");
        var head = fields[0];
        var colon = head.LastIndexOf(':');
        if (colon < 0 || colon == head.Length - 1) throw new ModelFormatException($"'{head}' is not NAME:OPTYPE");
        var name = colon == 0 ? $"node_{lineNumber}" : head[..colon];
        var opType = head[(colon + 1)..];
        var inputs = ParseTensorList(fields[1], "input", folder, $"node '{name}'", allowOmitted: true);
        var outputs = ParseTensorList(fields[2], "output", folder, $"node '{name}'", allowOmitted: false);
        if (outputs.Length == 0) throw new ModelFormatException("the output list is empty: an operation produces at least one tensor");
        var attributes = fields.Length == 4 ? ParseAttributes(fields[3]) : NodeAttributes.Empty;
        return new GraphNode(name, opType, inputs, outputs!, attributes, "");
    }

    private static TensorDescriptor?[] ParseTensorList(string field, string prefix, ModelFolder folder, string node, bool allowOmitted)
    {
        if (!field.StartsWith(prefix + ":", StringComparison.Ordinal))
            throw new ModelFormatException($"the {prefix} field must start with '{prefix}:'");
        var body = field[(prefix.Length + 1)..];
        if (body.Length == 0) return [];
        var parts = body.Split(';');
        var result = new TensorDescriptor?[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (parts[i].Length == 0)
            {
                if (!allowOmitted) throw new ModelFormatException($"{prefix} {i} is empty");
                continue;
            }
            result[i] = ParseTensor(parts[i], folder, node);
        }
        return result;
    }

    private static TensorDescriptor ParseTensor(string text, ModelFolder folder, string node)
    {
        var open = text.IndexOf('(');
        if (open <= 0 || !text.EndsWith(')'))
            throw new ModelFormatException($"'{text}' is not NAME(SHAPE) or NAME(TYPE:SHAPE)");
        var escapedName = text[..open];
        var inside = text[(open + 1)..^1];
        var typeEnd = inside.LastIndexOf(':');
        var shape = ParseShape(typeEnd < 0 ? inside : inside[(typeEnd + 1)..], escapedName);
        if (typeEnd < 0)
        {
            if (!NameEscaping.TryUnescape(escapedName, out var name))
                throw new ModelFormatException($"tensor name '{escapedName}' has a malformed _XX_ escape");
            // "()" is a scalar or, in unsimplified exports, an unknown shape: only shape inference can tell.
            return new TensorDescriptor(name, shape) { HasStaticShape = shape.Length > 0 && shape.All(d => d > 0) };
        }
        var (type, quantization) = ParseType(inside[..typeEnd], escapedName);
        if (shape.Contains(0)) throw new ModelFormatException($"weight '{escapedName}' has an unknown (0) dimension");
        var path = folder.Resolve(escapedName, $"{node}, weight '{escapedName}'");
        var expected = Shapes.ElementCount(shape) * type.Size();
        var file = LinkedFile.Info(path);
        if (!file.Exists) throw new ModelFormatException($"weight file {path} is missing");
        if (file.Length != expected)
            throw new ModelFormatException($"weight file {path} holds {file.Length} bytes; {type} [{string.Join(',', shape)}] needs {expected}");
        return new TensorDescriptor(escapedName, shape, type, quantization, new WeightLocation(path, 0, expected));
    }

    private static int[] ParseShape(string text, string tensor)
    {
        if (text.Length == 0) return [];
        var parts = text.Split(',');
        var shape = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]))
                throw new ModelFormatException($"tensor '{tensor}': '{text}' is not a comma-separated list of dimensions");
        if (!Shapes.FitsInTensor(shape))
            throw new ModelFormatException($"tensor '{tensor}': shape ({text}) has more than {int.MaxValue} elements, more than a tensor holds");
        return shape;
    }

    private static (ElementType, Quantization?) ParseType(string text, string tensor)
    {
        if (ElementTypes.TryParse(text, out var type)) return (type, null);
        // uint8[SCALE,ZERO_POINT]
        if (text.StartsWith("uint8[", StringComparison.Ordinal) && text.EndsWith(']'))
        {
            var parts = text[6..^1].Split(',');
            if (parts.Length == 2 &&
                float.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var scale) && scale > 0 &&
                byte.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var zeroPoint))
                return (ElementType.UInt8, new Quantization(scale, zeroPoint));
        }
        throw new ModelFormatException($"weight '{tensor}' has unknown type '{text}' (float32, float16, int64, uint8[SCALE,ZERO_POINT])");
    }

    private static NodeAttributes ParseAttributes(string field)
    {
        var values = new Dictionary<string, string>();
        if (field.Length == 0) return new NodeAttributes(values);
        foreach (var pair in field.Split(';'))
        {
            var colon = pair.IndexOf(':');
            if (pair.Length == 0) throw new ModelFormatException($"the attribute list '{field}' has an empty entry: the line is cut or malformed");
            if (colon <= 0) throw new ModelFormatException($"attribute '{pair}' is not NAME:VALUE");
            if (pair.IndexOf(',', colon) >= 0 && pair[(colon + 1)..].Split(',').Any(item => item.Trim().Length == 0))
                throw new ModelFormatException($"attribute '{pair}' has an empty list element: the line is cut or malformed");
            if (!values.TryAdd(pair[..colon], pair[(colon + 1)..]))
                throw new ModelFormatException($"attribute '{pair[..colon]}' is given twice");
        }
        return new NodeAttributes(values);
    }
}
