namespace OnnxStream.ModelBuilder;

/// <summary>Names of an attention module's projections (diffusers: to_q/to_k/to_v/to_out.0; transformers: q_proj/k_proj/v_proj/out_proj).</summary>
internal sealed record AttentionNames(string Query, string Key, string Value, string Out)
{
    public static readonly AttentionNames Diffusers = new("to_q", "to_k", "to_v", "to_out.0");
    public static readonly AttentionNames Transformers = new("q_proj", "k_proj", "v_proj", "out_proj");
}

/// <summary>
/// The PyTorch modules of the Stable Diffusion family as the ONNX patterns that torch.onnx.export
/// (opset 14) makes of them, with parameters named and shaped as in the checkpoints.
/// </summary>
internal static class Layers
{
    /// <summary>nn.Linear. On a 2-D input it exports as Gemm(transB) with the [out, in] weight; on 3-D as MatMul with the weight transposed to [in, out], then Add.</summary>
    public static string Linear(this OnnxGraphBuilder g, string name, string x, long inFeatures, long outFeatures, bool bias = true, bool twoDimensional = false)
    {
        using var _ = g.Scope(name);
        var init = WeightInit.FanIn(inFeatures);
        if (twoDimensional)
        {
            var weight = g.Parameter("weight", [outFeatures, inFeatures], init);
            string[] inputs = bias ? [x, weight, g.Parameter("bias", [outFeatures], init)] : [x, weight];
            return g.Node("Gemm", inputs, OnnxAttribute.Float("alpha", 1), OnnxAttribute.Float("beta", 1), OnnxAttribute.Int("transB", 1));
        }
        var product = g.Node("MatMul", [x, g.Parameter("weight", [inFeatures, outFeatures], init)]);
        return bias ? g.Node("Add", [g.Parameter("bias", [outFeatures], init), product]) : product;
    }

    /// <summary>nn.Conv2d with a square kernel, padding kernel/2.</summary>
    public static string Conv2d(this OnnxGraphBuilder g, string name, string x, long inChannels, long outChannels, int kernel, int stride = 1)
    {
        using var _ = g.Scope(name);
        var init = WeightInit.FanIn(inChannels * kernel * kernel);
        var weight = g.Parameter("weight", [outChannels, inChannels, kernel, kernel], init);
        var bias = g.Parameter("bias", [outChannels], init);
        var pad = kernel / 2;
        return g.Node("Conv", [x, weight, bias], OnnxAttribute.Ints("dilations", 1, 1), OnnxAttribute.Int("group", 1),
            OnnxAttribute.Ints("kernel_shape", kernel, kernel), OnnxAttribute.Ints("pads", pad, pad, pad, pad), OnnxAttribute.Ints("strides", stride, stride));
    }

    /// <summary>nn.GroupNorm: Reshape to [N, groups, -1], InstanceNormalization, Reshape back to Shape(x), then the per-channel affine.</summary>
    public static string GroupNorm(this OnnxGraphBuilder g, string name, string x, long channels, int groups, float epsilon)
    {
        using var _ = g.Scope(name);
        var grouped = g.Node("Reshape", [x, g.Ints(0, groups, -1)]);
        var normalized = g.Node("InstanceNormalization", [grouped, g.Constant(Enumerable.Repeat(1f, groups).ToArray(), groups), g.Constant(new float[groups], groups)],
            OnnxAttribute.Float("epsilon", epsilon));
        var restored = g.Node("Reshape", [normalized, g.Node("Shape", [x])]);
        var scaled = g.Node("Mul", [restored, g.Parameter("weight", [channels, 1, 1], WeightInit.Around(1, 0.1f))]);
        return g.Node("Add", [scaled, g.Parameter("bias", [channels, 1, 1], WeightInit.Uniform(0.1f))]);
    }

    /// <summary>nn.LayerNorm over the last axis, as opset 14 exports it (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add).</summary>
    public static string LayerNorm(this OnnxGraphBuilder g, string name, string x, long features, float epsilon = 1e-5f)
    {
        using var _ = g.Scope(name);
        var axes = OnnxAttribute.Ints("axes", -1);
        var centered = g.Node("Sub", [x, g.Node("ReduceMean", [x], axes)]);
        var variance = g.Node("ReduceMean", [g.Node("Pow", [centered, g.Scalar(2)])], axes);
        var normalized = g.Node("Div", [centered, g.Node("Sqrt", [g.Node("Add", [variance, g.Scalar(epsilon)])])]);
        var scaled = g.Node("Mul", [normalized, g.Parameter("weight", [features], WeightInit.Around(1, 0.1f))]);
        return g.Node("Add", [scaled, g.Parameter("bias", [features], WeightInit.Uniform(0.1f))]);
    }

    /// <summary>SiLU as x·Sigmoid(x).</summary>
    public static string Silu(this OnnxGraphBuilder g, string x) => g.Node("Mul", [x, g.Node("Sigmoid", [x])]);

    /// <summary>Exact GELU: x·0.5·(1 + Erf(x/√2)).</summary>
    public static string Gelu(this OnnxGraphBuilder g, string x)
    {
        var erf = g.Node("Erf", [g.Node("Div", [x, g.Scalar(1.4142135f)])]);
        return g.Node("Mul", [g.Node("Mul", [x, g.Node("Add", [erf, g.Scalar(1)])]), g.Scalar(0.5f)]);
    }

    /// <summary>CLIP's QuickGELU: x·Sigmoid(1.702·x).</summary>
    public static string QuickGelu(this OnnxGraphBuilder g, string x) => g.Node("Mul", [x, g.Node("Sigmoid", [g.Node("Mul", [x, g.Scalar(1.702f)])])]);

    /// <summary>
    /// Multi-head attention of [N, L, dim] queries over [N, S, contextDim] context: projections, Reshape to
    /// heads and Transpose, MatMul, scaling, optional additive mask, Softmax, MatMul, back to [N, L, dim], output
    /// projection. CLIP scales the query projection; diffusers scales the scores.
    /// </summary>
    public static string Attention(this OnnxGraphBuilder g, string name, string x, string? context, long dim, long contextDim, int heads, AttentionNames names,
                                   bool projectionBias, string? additiveMask = null, bool scaleQuery = false)
    {
        using var _ = name.Length > 0 ? g.Scope(name) : null; // "": the projections belong to the enclosing module
        context ??= x;
        var headDim = dim / heads;
        var scale = g.Scalar(1 / MathF.Sqrt(headDim));
        var query = g.Linear(names.Query, x, dim, dim, projectionBias);
        if (scaleQuery) query = g.Node("Mul", [query, scale]);
        var key = g.Linear(names.Key, context, contextDim, dim, projectionBias);
        var value = g.Linear(names.Value, context, contextDim, dim, projectionBias);
        var split = g.Ints(0, -1, heads, headDim);
        var q = g.Node("Transpose", [g.Node("Reshape", [query, split])], OnnxAttribute.Ints("perm", 0, 2, 1, 3));
        var kT = g.Node("Transpose", [g.Node("Reshape", [key, split])], OnnxAttribute.Ints("perm", 0, 2, 3, 1));
        var v = g.Node("Transpose", [g.Node("Reshape", [value, split])], OnnxAttribute.Ints("perm", 0, 2, 1, 3));
        var scores = g.Node("MatMul", [q, kT]);
        if (!scaleQuery) scores = g.Node("Mul", [scores, scale]);
        if (additiveMask is not null) scores = g.Node("Add", [scores, additiveMask]);
        var probabilities = g.Node("Softmax", [scores], OnnxAttribute.Int("axis", -1));
        var attended = g.Node("Transpose", [g.Node("MatMul", [probabilities, v])], OnnxAttribute.Ints("perm", 0, 2, 1, 3));
        var merged = g.Node("Reshape", [attended, g.Ints(0, -1, dim)]);
        return g.Linear(names.Out, merged, dim, dim);
    }

    /// <summary>[N, C, H, W] to [N, H·W, C] tokens.</summary>
    public static string ToTokens(this OnnxGraphBuilder g, string x, long channels) =>
        g.Node("Reshape", [g.Node("Transpose", [x], OnnxAttribute.Ints("perm", 0, 2, 3, 1)), g.Ints(0, -1, channels)]);

    /// <summary>[N, H·W, C] tokens back to the [N, C, H, W] shape of <paramref name="like"/>.</summary>
    public static string FromTokens(this OnnxGraphBuilder g, string tokens, string like) =>
        g.Node("Reshape", [g.Node("Transpose", [tokens], OnnxAttribute.Ints("perm", 0, 2, 1)), g.Node("Shape", [like])]);

    /// <summary>Nearest-neighbour ×2 upsampling as F.interpolate(scale_factor=2) exports it.</summary>
    public static string Upsample2x(this OnnxGraphBuilder g, string x) =>
        g.Node("Resize", [x, "", g.Float32Constant([1, 1, 2, 2], 4)],
            OnnxAttribute.String("coordinate_transformation_mode", "asymmetric"), OnnxAttribute.Float("cubic_coeff_a", -0.75f),
            OnnxAttribute.String("mode", "nearest"), OnnxAttribute.String("nearest_mode", "floor"));

    /// <summary>
    /// Sinusoidal embedding of the 1-D <paramref name="positions"/> (diffusers' get_timestep_embedding with
    /// flip_sin_to_cos and downscale_freq_shift 0): [n] → [n, dim] as Concat(Cos, Sin) of positions·Exp(-ln(10000)·i/half).
    /// Computed in float32 as diffusers does (timesteps.float()), and cast to the graph's type after.
    /// </summary>
    public static string SinusoidalEmbedding(this OnnxGraphBuilder g, string positions, int dim)
    {
        var float16 = g.FloatType == OnnxElementType.Float16;
        var half = dim / 2;
        var exponents = Enumerable.Range(0, half).Select(i => -MathF.Log(10000) * i / half).ToArray();
        var frequencies = g.Node("Exp", [g.Float32Constant(exponents, 1, half)]);
        if (float16) positions = g.Node("Cast", [positions], OnnxAttribute.Int("to", (long)OnnxElementType.Float));
        var angles = g.Node("Mul", [g.Node("Unsqueeze", [positions, g.Ints(1)]), frequencies]);
        var embedding = g.Node("Concat", [g.Node("Cos", [angles]), g.Node("Sin", [angles])], OnnxAttribute.Int("axis", -1));
        return float16 ? g.Node("Cast", [embedding], OnnxAttribute.Int("to", (long)OnnxElementType.Float16)) : embedding;
    }
}
