using System.Globalization;
using System.Text;

namespace OnnxStream.Conversion;

/// <summary>
/// Formats a double the way Python's <c>repr(float)</c> (and <c>str(float)</c>) does, which is how the
/// original converter writes FLOAT attributes and quantization scales: the shortest digits that read back
/// to the same double; positional notation with at least one decimal (<c>0.5</c>, <c>1.0</c>) when the
/// decimal exponent is in [-4, 16), else <c>d.ddde±XX</c> with at least two exponent digits (<c>1e-05</c>).
/// </summary>
internal static class PythonFloat
{
    /// <summary>Python's <c>repr(value)</c>.</summary>
    public static string Format(double value)
    {
        if (double.IsNaN(value)) return "nan";
        if (double.IsInfinity(value)) return value > 0 ? "inf" : "-inf";
        if (value == 0) return double.IsNegative(value) ? "-0.0" : "0.0";

        // .NET's "R" gives the shortest round-trip digits too, in another layout: take its digits and exponent.
        var (digits, exponent) = Decompose(value.ToString("R", CultureInfo.InvariantCulture));
        // value = 0.d1d2... × 10^point
        var point = exponent + 1;
        var builder = new StringBuilder(digits.Length + 8);
        if (value < 0) builder.Append('-');
        if (point is > -4 and <= 16)
        {
            if (point <= 0) builder.Append("0.").Append('0', -point).Append(digits);
            else if (point >= digits.Length) builder.Append(digits).Append('0', point - digits.Length).Append(".0");
            else builder.Append(digits, 0, point).Append('.').Append(digits, point, digits.Length - point);
        }
        else
        {
            builder.Append(digits[0]);
            if (digits.Length > 1) builder.Append('.').Append(digits, 1, digits.Length - 1);
            builder.Append('e').Append(exponent < 0 ? '-' : '+').Append(Math.Abs(exponent).ToString("00", CultureInfo.InvariantCulture));
        }
        return builder.ToString();
    }

    /// <summary>The significant digits (no leading or trailing zeros) and the exponent of the first one.</summary>
    private static (string Digits, int Exponent) Decompose(string text)
    {
        var e = text.IndexOfAny(['E', 'e']);
        var mantissa = e < 0 ? text : text[..e];
        var exponent = e < 0 ? 0 : int.Parse(text[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        mantissa = mantissa.TrimStart('-');
        var dot = mantissa.IndexOf('.');
        var integerDigits = dot < 0 ? mantissa.Length : dot;
        var all = mantissa.Replace(".", "", StringComparison.Ordinal);
        var leadingZeros = all.Length - all.TrimStart('0').Length;
        var digits = all.Trim('0');
        return (digits, exponent + integerDigits - 1 - leadingZeros);
    }
}
