namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>
/// The noise levels of a discrete-time (1000 timesteps) Stable Diffusion model, k-diffusion style: σ(t) from the
/// scaled-linear betas, step sigmas by log-σ interpolation (or Karras spacing), and σ → t for the UNet's timestep.
/// </summary>
public sealed class DiscreteNoiseSchedule
{
    private readonly double[] _logSigmas;

    /// <summary>The schedule of <paramref name="timesteps"/> scaled-linear betas from <paramref name="betaStart"/> to <paramref name="betaEnd"/>.</summary>
    public DiscreteNoiseSchedule(double betaStart = 0.00085, double betaEnd = 0.012, int timesteps = 1000)
    {
        _logSigmas = new double[timesteps];
        double alphaProduct = 1;
        for (var t = 0; t < timesteps; t++)
        {
            var root = Math.Sqrt(betaStart) + (Math.Sqrt(betaEnd) - Math.Sqrt(betaStart)) * t / (timesteps - 1);
            alphaProduct *= 1 - root * root;
            _logSigmas[t] = 0.5 * Math.Log((1 - alphaProduct) / alphaProduct);
        }
    }

    /// <summary>The smallest noise level (t = 0).</summary>
    public double SigmaMin => Math.Exp(_logSigmas[0]);

    /// <summary>The largest noise level (t = last).</summary>
    public double SigmaMax => Math.Exp(_logSigmas[^1]);

    /// <summary>
    /// <paramref name="steps"/> sigmas from σ_max down, then 0: timesteps evenly spaced from the last to 0 with
    /// log-σ interpolated between integers, or Karras et al.'s ρ = 7 spacing when <paramref name="karras"/>.
    /// </summary>
    public float[] Sigmas(int steps, bool karras = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        var sigmas = new float[steps + 1];
        for (var i = 0; i < steps; i++)
        {
            if (karras)
            {
                const double rho = 7;
                var ramp = steps == 1 ? 0 : (double)i / (steps - 1);
                var maxInv = Math.Pow(SigmaMax, 1 / rho);
                var minInv = Math.Pow(SigmaMin, 1 / rho);
                sigmas[i] = (float)Math.Pow(maxInv + ramp * (minInv - maxInv), rho);
            }
            else
            {
                var t = steps == 1 ? _logSigmas.Length - 1 : (_logSigmas.Length - 1) * (1 - (double)i / (steps - 1));
                var low = (int)Math.Floor(t);
                var high = Math.Min(low + 1, _logSigmas.Length - 1);
                var w = t - low;
                sigmas[i] = (float)Math.Exp((1 - w) * _logSigmas[low] + w * _logSigmas[high]);
            }
        }
        return sigmas;
    }

    /// <summary>The (fractional) timestep of noise level <paramref name="sigma"/>, interpolating in log σ.</summary>
    public float Timestep(float sigma)
    {
        var logSigma = Math.Log(sigma);
        var low = 0;
        for (var i = 0; i < _logSigmas.Length - 1; i++)
            if (logSigma >= _logSigmas[i]) low = i;
        var high = low + 1;
        var w = Math.Clamp((_logSigmas[low] - logSigma) / (_logSigmas[low] - _logSigmas[high]), 0, 1);
        return (float)((1 - w) * low + w * high);
    }
}
