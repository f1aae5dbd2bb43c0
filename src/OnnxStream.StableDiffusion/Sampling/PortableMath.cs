namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// ln and sin/cos built from IEEE-754 double +, −, × and ÷ only, so that they give the same bits on every platform
/// (the C runtimes behind Math.Log/Math.Sin may differ in the last bit). Accurate to a few units in the last place,
/// which is far below the float32 the noise is stored in. .NET does not contract a·b + c into a fused multiply-add
/// on its own, so the evaluation order below is the one executed.
/// </summary>
internal static class PortableMath
{
    private const double Ln2 = 0.6931471805599453094;
    private const double HalfPi = 1.5707963267948966192;

    /// <summary>ln x for a positive normal x.</summary>
    public static double Log(double x)
    {
        if (!(x > 0) || !double.IsNormal(x)) throw new ArgumentOutOfRangeException(nameof(x), $"{x} is not a positive normal number.");
        // x = m·2^e with m in [√½, √2): ln x = e·ln 2 + ln m, and ln m = 2·atanh(s), s = (m − 1)/(m + 1), |s| <= 0.172.
        var bits = BitConverter.DoubleToInt64Bits(x);
        var exponent = (int)((bits >> 52) & 0x7FF) - 1023;
        var m = BitConverter.Int64BitsToDouble((bits & 0x000F_FFFF_FFFF_FFFFL) | 0x3FF0_0000_0000_0000L);
        if (m > 1.4142135623730951)
        {
            m *= 0.5;
            exponent++;
        }
        var s = (m - 1) / (m + 1);
        var s2 = s * s;
        // 2s·Σ s^(2k)/(2k+1), k = 0..12: the first omitted term is below 1e-20 relative.
        var series = 1.0 / 25;
        for (var k = 11; k >= 0; k--) series = series * s2 + 1.0 / (2 * k + 1);
        return exponent * Ln2 + 2 * s * series;
    }

    /// <summary>(sin 2πu, cos 2πu) for u in [0, 1).</summary>
    public static (double Sin, double Cos) SinCosOfTurns(double u)
    {
        if (!(u >= 0 && u < 1)) throw new ArgumentOutOfRangeException(nameof(u), $"{u} is outside [0, 1).");
        // Quarter turn q and the angle a within it (u·4 and the subtraction are exact).
        var quarters = u * 4;
        var q = (int)quarters;
        var a = (quarters - q) * HalfPi;
        var a2 = a * a;
        // Taylor series to a^23 on [0, π/2): the first omitted term is below 2e-18.
        double sin = 0, cos = 0;
        for (var k = 11; k >= 0; k--)
        {
            sin = sin * a2 + SinCoefficients[k];
            cos = cos * a2 + CosCoefficients[k];
        }
        sin *= a;
        return q switch
        {
            0 => (sin, cos),
            1 => (cos, -sin),
            2 => (-sin, -cos),
            _ => (-cos, sin),
        };
    }

    // (−1)^k/(2k+1)! and (−1)^k/(2k)!, k = 0..11, computed by IEEE multiplications and one division: the same bits everywhere.
    private static readonly double[] SinCoefficients = Coefficients(odd: true);
    private static readonly double[] CosCoefficients = Coefficients(odd: false);

    private static double[] Coefficients(bool odd)
    {
        var result = new double[12];
        for (var k = 0; k < 12; k++)
        {
            double factorial = 1;
            for (var f = 2; f <= 2 * k + (odd ? 1 : 0); f++) factorial *= f;
            result[k] = (k % 2 == 0 ? 1 : -1) / factorial;
        }
        return result;
    }
}
