namespace OnnxStream.Tests.StableDiffusion.Sampling;

/// <summary>
/// Straightforward double-precision reimplementations of the samplers, written from their sources and independent of
/// the library: k-diffusion's <c>sampling.py</c> (Katherine Crowson; <c>sample_euler</c>, <c>sample_euler_ancestral</c>,
/// <c>sample_heun</c>, <c>sample_dpm_2</c>, <c>sample_dpmpp_2s_ancestral</c>, <c>sample_dpmpp_sde</c>,
/// <c>sample_dpmpp_2m</c>, <c>sample_lms</c> with <c>get_ancestral_step</c>, <c>linear_multistep_coeff</c>), kept in its
/// λ = −ln σ / expm1 form; and diffusers' <c>DDIMScheduler.step</c>, <c>DDPMScheduler.step</c>,
/// <c>LCMScheduler.step</c> and <c>TCDScheduler.step</c> for ε-prediction, run in diffusers' own latent xₜ with ᾱ
/// tables built here from the betas — so these also check that the library's σ-form rewrite is the same process.
/// Each returns the latent after every step, in σ form (xₜ/√ᾱ for the diffusers ones).
/// </summary>
internal static class SamplerReferences
{
    public delegate double[] Model(double[] x, double sigma);

    public static List<double[]> EulerAncestral(double[] x, double[] sigmas, Model model, Func<double[]> noise, double eta)
    {
        var trajectory = new List<double[]>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            var denoised = model(x, sigmas[i]);
            var (down, up) = AncestralStep(sigmas[i], sigmas[i + 1], eta);
            var d = ToD(x, sigmas[i], denoised);
            x = Add(x, d, down - sigmas[i]);
            if (sigmas[i + 1] > 0) x = Add(x, noise(), up);
            trajectory.Add(x);
        }
        return trajectory;
    }

    public static List<double[]> Heun(double[] x, double[] sigmas, Model model)
    {
        var trajectory = new List<double[]>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            var denoised = model(x, sigmas[i]);
            var d = ToD(x, sigmas[i], denoised);
            var dt = sigmas[i + 1] - sigmas[i];
            if (sigmas[i + 1] == 0) x = Add(x, d, dt);
            else
            {
                var x2 = Add(x, d, dt);
                var d2 = ToD(x2, sigmas[i + 1], model(x2, sigmas[i + 1]));
                x = Add(x, Lerp(d, d2, 0.5), dt);
            }
            trajectory.Add(x);
        }
        return trajectory;
    }

    public static List<double[]> Dpm2(double[] x, double[] sigmas, Model model)
    {
        var trajectory = new List<double[]>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            var denoised = model(x, sigmas[i]);
            var d = ToD(x, sigmas[i], denoised);
            if (sigmas[i + 1] == 0) x = Add(x, d, sigmas[i + 1] - sigmas[i]);
            else
            {
                var mid = Math.Exp(Math.Log(sigmas[i]) + 0.5 * (Math.Log(sigmas[i + 1]) - Math.Log(sigmas[i])));
                var x2 = Add(x, d, mid - sigmas[i]);
                var d2 = ToD(x2, mid, model(x2, mid));
                x = Add(x, d2, sigmas[i + 1] - sigmas[i]);
            }
            trajectory.Add(x);
        }
        return trajectory;
    }

    public static List<double[]> DpmPlusPlus2SAncestral(double[] x, double[] sigmas, Model model, Func<double[]> noise, double eta)
    {
        var trajectory = new List<double[]>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            var denoised = model(x, sigmas[i]);
            var (down, up) = AncestralStep(sigmas[i], sigmas[i + 1], eta);
            if (down == 0) x = Add(x, ToD(x, sigmas[i], denoised), down - sigmas[i]);
            else
            {
                double t = T(sigmas[i]), tNext = T(down), h = tNext - t, s = t + 0.5 * h;
                var x2 = Combine(Sigma(s) / Sigma(t), x, -double.ExpM1(-h * 0.5), denoised);
                var denoised2 = model(x2, Sigma(s));
                x = Combine(Sigma(tNext) / Sigma(t), x, -double.ExpM1(-h), denoised2);
            }
            if (sigmas[i + 1] > 0) x = Add(x, noise(), up);
            trajectory.Add(x);
        }
        return trajectory;
    }

    public static List<double[]> DpmPlusPlusSde(double[] x, double[] sigmas, Model model, Func<double[]> noise, double eta)
    {
        const double r = 0.5;
        var trajectory = new List<double[]>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            var denoised = model(x, sigmas[i]);
            if (sigmas[i + 1] == 0) x = Add(x, ToD(x, sigmas[i], denoised), sigmas[i + 1] - sigmas[i]);
            else
            {
                double t = T(sigmas[i]), tNext = T(sigmas[i + 1]), h = tNext - t, s = t + h * r, fac = 1 / (2 * r);
                var (sd, su) = AncestralStep(Sigma(t), Sigma(s), eta);
                var s_ = T(sd);
                var x2 = Combine(Sigma(s_) / Sigma(t), x, -double.ExpM1(t - s_), denoised);
                x2 = Add(x2, noise(), su);
                var denoised2 = model(x2, Sigma(s));
                (sd, su) = AncestralStep(Sigma(t), Sigma(tNext), eta);
                var tNext_ = T(sd);
                var denoisedD = Combine(1 - fac, denoised, fac, denoised2);
                x = Combine(Sigma(tNext_) / Sigma(t), x, -double.ExpM1(t - tNext_), denoisedD);
                x = Add(x, noise(), su);
            }
            trajectory.Add(x);
        }
        return trajectory;
    }

    public static List<double[]> DpmPlusPlus2M(double[] x, double[] sigmas, Model model)
    {
        var trajectory = new List<double[]>();
        double[]? oldDenoised = null;
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            var denoised = model(x, sigmas[i]);
            double t = T(sigmas[i]), tNext = T(sigmas[i + 1]), h = tNext - t;
            if (oldDenoised is null || sigmas[i + 1] == 0)
                x = Combine(Sigma(tNext) / Sigma(t), x, -double.ExpM1(-h), denoised); // σ_next = 0: t_next = ∞, x = D
            else
            {
                var hLast = t - T(sigmas[i - 1]);
                var r = hLast / h;
                var denoisedD = Combine(1 + 1 / (2 * r), denoised, -1 / (2 * r), oldDenoised);
                x = Combine(Sigma(tNext) / Sigma(t), x, -double.ExpM1(-h), denoisedD);
            }
            oldDenoised = denoised;
            trajectory.Add(x);
        }
        return trajectory;
    }

    public static List<double[]> Lms(double[] x, double[] sigmas, Model model)
    {
        const int order = 4;
        var trajectory = new List<double[]>();
        var ds = new List<double[]>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ds.Add(ToD(x, sigmas[i], model(x, sigmas[i])));
            if (ds.Count > order) ds.RemoveAt(0);
            var currentOrder = Math.Min(i + 1, order);
            for (var j = 0; j < currentOrder; j++)
                x = Add(x, ds[^(j + 1)], LinearMultistepCoefficient(currentOrder, sigmas, i, j));
            trajectory.Add(x);
        }
        return trajectory;
    }

    /// <summary>∫ from t[i] to t[i+1] of ∏_{k≠j} (τ − t[i−k])/(t[i−j] − t[i−k]) dτ, by expanding the polynomial and
    /// integrating it exactly (k-diffusion uses scipy's quad).</summary>
    public static double LinearMultistepCoefficient(int order, double[] t, int i, int j)
    {
        var polynomial = new List<double> { 1 }; // coefficients of τ⁰, τ¹, ...
        for (var k = 0; k < order; k++)
        {
            if (k == j) continue;
            var scale = 1 / (t[i - j] - t[i - k]);
            var next = new double[polynomial.Count + 1];
            for (var m = 0; m < polynomial.Count; m++)
            {
                next[m + 1] += polynomial[m] * scale;
                next[m] -= polynomial[m] * t[i - k] * scale;
            }
            polynomial = [.. next];
        }
        double integral = 0;
        for (var m = 0; m < polynomial.Count; m++)
            integral += polynomial[m] * (Math.Pow(t[i + 1], m + 1) - Math.Pow(t[i], m + 1)) / (m + 1);
        return integral;
    }

    /// <summary>ᾱ of SD's scaled-linear betas (0.00085..0.012, 1000 steps).</summary>
    public static readonly double[] Alphas = AlphasCumprod();

    private static double[] AlphasCumprod()
    {
        var alphas = new double[1000];
        double product = 1;
        for (var t = 0; t < 1000; t++)
        {
            var beta = Math.Pow(Math.Sqrt(0.00085) + (Math.Sqrt(0.012) - Math.Sqrt(0.00085)) * t / 999, 2);
            alphas[t] = product *= 1 - beta;
        }
        return alphas;
    }

    /// <summary>diffusers DDIMScheduler.step (ε, no clipping), prev_t = t − 1000/n, final ᾱ = <paramref name="finalAlpha"/>.</summary>
    public static List<double[]> Ddim(double[] xSigma, int[] timesteps, Model model, Func<double[]> noise, double eta, double finalAlpha) =>
        InDiffusersLatent(xSigma, timesteps, (i, x) =>
        {
            var t = timesteps[i];
            var prev = t - 1000 / timesteps.Length;
            double alpha = Alphas[t], alphaPrev = prev >= 0 ? Alphas[prev] : finalAlpha;
            var (eps, x0) = Predict(model, x, alpha);
            var variance = (1 - alphaPrev) / (1 - alpha) * (1 - alpha / alphaPrev);
            var std = eta * Math.Sqrt(variance);
            x = Combine(Math.Sqrt(alphaPrev), x0, Math.Sqrt(1 - alphaPrev - std * std), eps);
            if (eta > 0) x = Add(x, noise(), std);
            return (x, alphaPrev);
        });

    /// <summary>diffusers DDPMScheduler.step (ε, fixed_small variance, no clipping), prev_t = the next timestep.</summary>
    public static List<double[]> Ddpm(double[] xSigma, int[] timesteps, Model model, Func<double[]> noise) =>
        InDiffusersLatent(xSigma, timesteps, (i, x) =>
        {
            var t = timesteps[i];
            var prev = i + 1 < timesteps.Length ? timesteps[i + 1] : -1;
            double alpha = Alphas[t], alphaPrev = prev >= 0 ? Alphas[prev] : 1;
            double currentAlpha = alpha / alphaPrev, currentBeta = 1 - currentAlpha;
            var (_, x0) = Predict(model, x, alpha);
            x = Combine(Math.Sqrt(alphaPrev) * currentBeta / (1 - alpha), x0, Math.Sqrt(currentAlpha) * (1 - alphaPrev) / (1 - alpha), x);
            if (t > 0) x = Add(x, noise(), Math.Sqrt(Math.Max((1 - alphaPrev) / (1 - alpha) * currentBeta, 1e-20)));
            return (x, alphaPrev);
        });

    /// <summary>diffusers LCMScheduler.step (ε, boundary condition with σ_data 0.5 and timestep scaling 10).</summary>
    public static List<double[]> Lcm(double[] xSigma, int[] timesteps, Model model, Func<double[]> noise) =>
        InDiffusersLatent(xSigma, timesteps, (i, x) =>
        {
            var t = timesteps[i];
            var scaled = t * 10.0;
            var cSkip = 0.25 / (scaled * scaled + 0.25);
            var cOut = scaled / Math.Sqrt(scaled * scaled + 0.25);
            var (_, x0) = Predict(model, x, Alphas[t]);
            var denoised = Combine(cOut, x0, cSkip, x);
            if (i == timesteps.Length - 1) return (denoised, 1); // the last step returns the prediction itself
            var alphaPrev = Alphas[timesteps[i + 1]];
            return (Combine(Math.Sqrt(alphaPrev), denoised, Math.Sqrt(1 - alphaPrev), noise()), alphaPrev);
        });

    /// <summary>diffusers TCDScheduler.step (ε) with γ = <paramref name="gamma"/> (its <c>eta</c>).</summary>
    public static List<double[]> Tcd(double[] xSigma, int[] timesteps, Model model, Func<double[]> noise, double gamma) =>
        InDiffusersLatent(xSigma, timesteps, (i, x) =>
        {
            var last = i == timesteps.Length - 1;
            var prev = last ? 0 : timesteps[i + 1];
            var s = (int)MathF.Floor((float)(1 - gamma) * prev); // torch: float32 scalar × long tensor
            double alphaPrev = Alphas[prev], alphaS = Alphas[s];
            var (eps, x0) = Predict(model, x, Alphas[timesteps[i]]);
            var noised = Combine(Math.Sqrt(alphaS), x0, Math.Sqrt(1 - alphaS), eps);
            if (gamma == 0 || last) return (noised, alphaS);
            return (Combine(Math.Sqrt(alphaPrev / alphaS), noised, Math.Sqrt(1 - alphaPrev / alphaS), noise()), alphaPrev);
        });

    /// <summary>Runs a diffusers scheduler over its timesteps in its own latent xₜ = x·√ᾱ (starting from σ-form
    /// <paramref name="xSigma"/> at the first timestep); each step returns the next xₜ and the ᾱ it is at, and the
    /// trajectory records xₜ/√ᾱ.</summary>
    private static List<double[]> InDiffusersLatent(double[] xSigma, int[] timesteps, Func<int, double[], (double[] X, double Alpha)> step)
    {
        var trajectory = new List<double[]>();
        var x = Scale(xSigma, Math.Sqrt(Alphas[timesteps[0]]));
        for (var i = 0; i < timesteps.Length; i++)
        {
            (x, var alpha) = step(i, x);
            trajectory.Add(Scale(x, 1 / Math.Sqrt(alpha)));
        }
        return trajectory;
    }

    /// <summary>The ε an ε-prediction UNet gives for diffusers latent xₜ when the model's x₀ guess is <paramref name="model"/>
    /// at σ = √((1 − ᾱ)/ᾱ) (xₜ/√ᾱ = x₀ + σ·ε), and the scheduler's pred_original_sample (xₜ − √(1 − ᾱ)·ε)/√ᾱ.</summary>
    private static (double[] Epsilon, double[] X0) Predict(Model model, double[] xT, double alpha)
    {
        var sigma = Math.Sqrt((1 - alpha) / alpha);
        var xSigma = Scale(xT, 1 / Math.Sqrt(alpha));
        var eps = ToD(xSigma, sigma, model(xSigma, sigma));
        return (eps, Combine(1 / Math.Sqrt(alpha), xT, -Math.Sqrt(1 - alpha) / Math.Sqrt(alpha), eps));
    }

    private static (double Down, double Up) AncestralStep(double from, double to, double eta)
    {
        if (eta == 0) return (to, 0);
        var up = Math.Min(to, eta * Math.Pow(to * to * (from * from - to * to) / (from * from), 0.5));
        return (Math.Pow(to * to - up * up, 0.5), up);
    }

    private static double T(double sigma) => -Math.Log(sigma);
    private static double Sigma(double t) => Math.Exp(-t);
    private static double[] ToD(double[] x, double sigma, double[] denoised) => Combine(1 / sigma, x, -1 / sigma, denoised);
    private static double[] Add(double[] x, double[] y, double scale) => Combine(1, x, scale, y);
    private static double[] Scale(double[] x, double scale) => [.. x.Select(v => v * scale)];
    private static double[] Lerp(double[] a, double[] b, double w) => Combine(1 - w, a, w, b);
    private static double[] Combine(double a, double[] x, double b, double[] y) => [.. x.Select((v, j) => a * v + b * y[j])];
}
