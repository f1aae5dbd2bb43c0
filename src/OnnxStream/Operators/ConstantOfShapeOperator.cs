using System.Globalization;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX ConstantOfShape: a tensor of the shape given by the int64 input (empty: a scalar) filled with
/// attribute <c>value</c>, a one-element TENSOR attribute (default: float32 0). model.txt keeps a
/// TENSOR attribute as its text value, so the element type comes from, in this order: a type prefix in
/// the text, <c>TYPE:VALUE</c> (e.g. <c>int64:0</c>); the companion attribute <c>value.dtype</c> the
/// ONNX loader writes; else int64 when the text is an integer (the original converter writes a float
/// value as Python's <c>str(float)</c>, always with a point, exponent or inf/nan) and float32 otherwise.
/// TYPE is float32, float16, int64, int32, uint8 or bool.
/// </summary>
internal sealed class ConstantOfShapeOperator : IOperator
{
    /// <summary>The companion attribute holding the element type of <c>value</c>.</summary>
    private const string DTypeAttribute = "value.dtype";

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var shape = InferShape(context, context.Input(0), out var type, out var text);
        var output = context.Output(0, type, shape);
        if (output.ElementCount == 0) return;
        switch (type)
        {
            case ElementType.Float32: output.Span<float>().Fill(ParseFloat(context, text)); break;
            case ElementType.Float16: output.Span<Half>().Fill((Half)ParseFloat(context, text)); break;
            case ElementType.Int64: output.Span<long>().Fill(ParseInteger(context, text, long.MinValue, long.MaxValue)); break;
            case ElementType.Int32: output.Span<int>().Fill((int)ParseInteger(context, text, int.MinValue, int.MaxValue)); break;
            case ElementType.UInt8: output.Span<byte>().Fill((byte)ParseInteger(context, text, 0, 255)); break;
            default: output.Span<byte>().Fill(ParseBool(context, text) ? (byte)1 : (byte)0); break;
        }
    }

    /// <summary>The output shape (the input's values), the element type, and the value's text.</summary>
    public static int[] InferShape(OperatorContext context, Tensor shapeInput, out ElementType type, out string text)
    {
        if (shapeInput.ElementType != ElementType.Int64)
            throw context.Error($"input must be int64, not {shapeInput.ElementType}");
        var values = AxisHelper.ReadIndices(context, shapeInput, "input");
        var shape = new int[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] < 0 || values[i] > int.MaxValue)
                throw context.Error($"shape {AxisHelper.Format(values)} has an invalid dimension {values[i]}");
            shape[i] = (int)values[i];
        }
        (type, text) = Value(context);
        return shape;
    }

    /// <summary>The element type and the value text of attribute <c>value</c>.</summary>
    private static (ElementType Type, string Text) Value(OperatorContext context)
    {
        var attributes = context.Attributes;
        if (!attributes.Has("value")) return (ElementType.Float32, "0");
        var text = attributes.GetString("value", "0").Trim();
        var colon = text.IndexOf(':');
        if (colon >= 0)
        {
            var name = text[..colon].Trim();
            if (!ElementTypes.TryParse(name, out var prefixed))
                throw context.Error($"attribute 'value' '{text}' has an unknown type '{name}' (float32, float16, int64, int32, uint8, bool)");
            return (prefixed, text[(colon + 1)..].Trim());
        }
        // The original converter writes a float value as Python's str(float) ("1.0", "-inf"), an integer one bare ("1").
        var fallback = long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _) ? "int64" : "float32";
        var dtype = attributes.GetString(DTypeAttribute, fallback);
        if (!ElementTypes.TryParse(dtype, out var type))
            throw context.Error($"attribute '{DTypeAttribute}' '{dtype}' is not a supported type (float32, float16, int64, int32, uint8, bool)");
        return (type, text);
    }

    private static void CheckSingle(OperatorContext context, string text)
    {
        if (text.Length == 0 || text.Contains(','))
            throw context.Error($"attribute 'value' must hold exactly one value, not '{text}'");
    }

    private static float ParseFloat(OperatorContext context, string text)
    {
        CheckSingle(context, text);
        switch (text.ToLowerInvariant())
        {
            case "inf" or "+inf" or "infinity" or "+infinity": return float.PositiveInfinity;
            case "-inf" or "-infinity": return float.NegativeInfinity;
            case "nan" or "-nan" or "+nan": return float.NaN;
        }
        return float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw context.Error($"attribute 'value' '{text}' is not a number");
    }

    private static long ParseInteger(OperatorContext context, string text, long min, long max)
    {
        CheckSingle(context, text);
        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            // A float text that holds an integer ("3.0") is accepted.
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) || real != Math.Floor(real) ||
                real < -9.2e18 || real > 9.2e18)
                throw context.Error($"attribute 'value' '{text}' is not an integer");
            value = (long)real;
        }
        if (value < min || value > max) throw context.Error($"attribute 'value' {value} is out of range ({min}..{max})");
        return value;
    }

    private static bool ParseBool(OperatorContext context, string text)
    {
        CheckSingle(context, text);
        return text.ToLowerInvariant() switch
        {
            "true" => true,
            "false" => false,
            _ => ParseFloat(context, text) != 0,
        };
    }
}
