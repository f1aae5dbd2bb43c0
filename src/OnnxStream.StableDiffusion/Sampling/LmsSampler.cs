namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// Linear multistep, order 4 (k-diffusion <c>sample_lms</c>): x ← x + Σⱼ cⱼ·d_{i−j} over the last (up to) four
/// slopes d = (x − D)/σ, cⱼ = ∫ from σᵢ to σᵢ₊₁ of the Lagrange basis polynomial ∏_{k≠j} (τ − σ_{i−k})/(σ_{i−j} − σ_{i−k}).
/// k-diffusion integrates numerically (scipy quad); the integrand is a polynomial of degree ≤ 3, which three-point
/// Gauss–Legendre integrates exactly.
/// </summary>
internal sealed class LmsSampler(double[] sigmas, IGaussianNoise noise) : Sampler("lms", sigmas, noise)
{
    private const int Order = 4;
    private static readonly double[] GaussNodes = [-Math.Sqrt(0.6), 0, Math.Sqrt(0.6)];
    private static readonly double[] GaussWeights = [5.0 / 9, 8.0 / 9, 5.0 / 9];

    // Slopes of the last steps, oldest first.
    private readonly List<float[]> _slopes = [];

    private protected override void StepCore(int i, Span<float> x, Denoiser denoiser, float[] denoised)
    {
        var sigma = Sigmas[i];
        denoiser(x, sigma, denoised);
        float[] slope;
        if (_slopes.Count == Order)
        {
            slope = _slopes[0];
            _slopes.RemoveAt(0);
        }
        else slope = new float[x.Length];
        for (var j = 0; j < x.Length; j++) slope[j] = (float)((x[j] - (double)denoised[j]) / sigma);
        _slopes.Add(slope);

        var order = Math.Min(i + 1, Order);
        for (var j = 0; j < order; j++)
        {
            var coefficient = Coefficient(order, i, j);
            var d = _slopes[^(j + 1)];
            for (var k = 0; k < x.Length; k++) x[k] = (float)(x[k] + coefficient * d[k]);
        }
    }

    /// <summary>k-diffusion's <c>linear_multistep_coeff(order, sigmas, i, j)</c>.</summary>
    private double Coefficient(int order, int i, int j)
    {
        double from = Sigmas[i], to = Sigmas[i + 1];
        double half = (to - from) / 2, center = (to + from) / 2, sum = 0;
        for (var g = 0; g < GaussNodes.Length; g++)
        {
            var tau = center + half * GaussNodes[g];
            double product = 1;
            for (var k = 0; k < order; k++)
                if (k != j) product *= (tau - Sigmas[i - k]) / (Sigmas[i - j] - Sigmas[i - k]);
            sum += GaussWeights[g] * product;
        }
        return sum * half;
    }
}
