using System.Globalization;
using System.Text;
using OnnxStream.Graph;
using OnnxStream.Kernels;

namespace OnnxStream.Runtime;

/// <summary>
/// Activation ranges for static (W8A8) quantization, the original OnnxStream's <c>range_data.txt</c>: one
/// <c>OPNAME,MIN,MAX</c> line per operation, OPNAME the model.txt node name whose output the range
/// describes. <see cref="Calibrator"/> makes one; an <see cref="InferenceSession"/> with
/// <see cref="ActivationQuantization.Static"/> quantizes each such output over its range.
/// </summary>
public sealed class RangeData
{
    private readonly Dictionary<string, (float Min, float Max)> _ranges = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    /// <summary>Node names, in the order they were first added (or read).</summary>
    public IReadOnlyList<string> Names => _order;

    /// <summary>Number of ranges.</summary>
    public int Count => _order.Count;

    /// <summary>The range of node <paramref name="name"/>'s output, if recorded.</summary>
    public bool TryGetRange(string name, out float min, out float max)
    {
        var found = _ranges.TryGetValue(name, out var range);
        (min, max) = range;
        return found;
    }

    /// <summary>The quantization of node <paramref name="name"/>'s output (<see cref="Quantization.FromRange"/>), or null when it has no range or an empty one.</summary>
    public Quantization? QuantizationOf(string name) =>
        _ranges.TryGetValue(name, out var range) ? Quantization.FromRange(range.Min, range.Max) : null;

    /// <summary>Records a range, or widens the recorded one to include [<paramref name="min"/>, <paramref name="max"/>].</summary>
    /// <exception cref="ArgumentException">The range is not finite or min &gt; max.</exception>
    public void Include(string name, float min, float max)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!float.IsFinite(min) || !float.IsFinite(max) || min > max)
            throw new ArgumentException($"The range [{min}, {max}] of '{name}' is not a finite range with min ≤ max.");
        if (_ranges.TryGetValue(name, out var old)) _ranges[name] = (Math.Min(old.Min, min), Math.Max(old.Max, max));
        else
        {
            _ranges[name] = (min, max);
            _order.Add(name);
        }
    }

    /// <summary>Reads a range_data.txt (lines ending in \n or \r\n; blank lines ignored).</summary>
    /// <exception cref="ModelFormatException">A line is malformed, repeats a name, or has min &gt; max; the message names the file and line.</exception>
    public static RangeData Load(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        return Read(reader, path);
    }

    /// <summary>Reads range_data.txt text; <paramref name="source"/> names it in errors.</summary>
    public static RangeData Read(TextReader reader, string source = "range_data.txt")
    {
        var data = new RangeData();
        var number = 0;
        while (reader.ReadLine() is { } line) // ReadLine drops \r\n as well as \n
        {
            number++;
            if (line.Trim().Length == 0) continue;
            var where = $"{source}:{number}";
            // The name may itself hold commas: the two numbers are the last two fields.
            var second = line.LastIndexOf(',');
            var first = second > 0 ? line.LastIndexOf(',', second - 1) : -1;
            if (first <= 0)
                throw new ModelFormatException($"{where}: expected NAME,MIN,MAX, got '{line}'");
            var name = line[..first];
            if (!TryParseFloat(line[(first + 1)..second], out var min) || !TryParseFloat(line[(second + 1)..], out var max))
                throw new ModelFormatException($"{where}: MIN and MAX must be finite numbers, got '{line}'");
            if (min > max)
                throw new ModelFormatException($"{where}: MIN {min} is greater than MAX {max} for '{name}'");
            if (data._ranges.ContainsKey(name))
                throw new ModelFormatException($"{where}: '{name}' already has a range");
            data.Include(name, min, max);
        }
        return data;
    }

    /// <summary>
    /// Writes range_data.txt as the original does (<c>NAME,MIN,MAX</c>, lines ending in \r\n), numbers in shortest round-trip
    /// form; under a temporary name renamed at the end (<see cref="IO.AtomicFile"/>), so a failed write leaves no partial file.
    /// </summary>
    public void Save(string path)
    {
        var text = new StringWriter(CultureInfo.InvariantCulture);
        Write(text);
        IO.AtomicFile.WriteAllText(path, text.ToString());
    }

    /// <summary>Writes the ranges, in <see cref="Names"/> order.</summary>
    public void Write(TextWriter writer)
    {
        foreach (var name in _order)
        {
            var (min, max) = _ranges[name];
            writer.Write($"{name},{min.ToString("R", CultureInfo.InvariantCulture)},{max.ToString("R", CultureInfo.InvariantCulture)}\r\n");
        }
    }

    private static bool TryParseFloat(string text, out float value) =>
        float.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out value) && float.IsFinite(value);
}
