using System.Globalization;

namespace OnnxStream.Graph;

/// <summary>One operation of a graph.</summary>
/// <param name="Name">The node's name (unique in the graph).</param>
/// <param name="OpType">The ONNX operator type, e.g. <c>Conv</c>.</param>
/// <param name="Inputs">Inputs by position; null marks an omitted optional input.</param>
/// <param name="Outputs">Outputs by position.</param>
/// <param name="Attributes">Attributes in their model.txt text form (see <see cref="NodeAttributes"/>).</param>
/// <param name="Source">Where the node was read from, for error messages (e.g. <c>model.txt:12</c>).</param>
public sealed record GraphNode(string Name, string OpType, TensorDescriptor?[] Inputs, TensorDescriptor[] Outputs,
    NodeAttributes Attributes, string Source)
{
    /// <inheritdoc />
    public override string ToString() => $"{OpType} node '{Name}' ({Source})";
}

/// <summary>
/// A node's attributes as text, the model.txt encoding of ONNX attributes: INT as a decimal, FLOAT as
/// Python writes it, STRING as is, INTS comma-separated, a scalar TENSOR as its one value.
/// </summary>
public sealed class NodeAttributes
{
    private readonly Dictionary<string, string> _values;

    /// <summary>Wraps name → text pairs.</summary>
    public NodeAttributes(Dictionary<string, string> values) => _values = values;

    /// <summary>No attributes.</summary>
    public static NodeAttributes Empty { get; } = new([]);

    /// <summary>Attribute names.</summary>
    public IEnumerable<string> Names => _values.Keys;

    /// <summary>Whether the attribute is present.</summary>
    public bool Has(string name) => _values.ContainsKey(name);

    /// <summary>A STRING attribute, or <paramref name="fallback"/>.</summary>
    public string GetString(string name, string fallback) => _values.GetValueOrDefault(name, fallback);

    /// <summary>An INT attribute, or <paramref name="fallback"/>.</summary>
    public long GetInt(string name, long fallback) =>
        _values.TryGetValue(name, out var text) ? Parse(name, text, long.Parse) : fallback;

    /// <summary>A FLOAT attribute, or <paramref name="fallback"/>.</summary>
    public float GetFloat(string name, float fallback) =>
        _values.TryGetValue(name, out var text) ? Parse(name, text, (t, s, c) => float.Parse(t, s, c)) : fallback;

    /// <summary>An INTS attribute, or null when absent.</summary>
    public long[]? GetInts(string name) =>
        _values.TryGetValue(name, out var text)
            ? text.Length == 0 ? [] : text.Split(',').Select(part => Parse(name, part, long.Parse)).ToArray()
            : null;

    private static T Parse<T>(string name, string text, Func<string, NumberStyles, IFormatProvider, T> parse)
    {
        try
        {
            return parse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture);
        }
        catch (FormatException)
        {
            throw new FormatException($"attribute '{name}': '{text}' is not a {typeof(T).Name}");
        }
        catch (OverflowException)
        {
            throw new FormatException($"attribute '{name}': '{text}' is out of range");
        }
    }
}
