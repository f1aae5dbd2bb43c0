namespace OnnxStream.ModelBuilder;

/// <summary>SDXL's "text_time" added embedding: pooled text embeddings and time ids, embedded and added to the time embedding.</summary>
/// <param name="TextEmbedsDim">Width of the text_embeds input (the second text encoder's projection).</param>
/// <param name="TimeEmbedDim">Width of each time id's sinusoidal embedding (addition_time_embed_dim).</param>
/// <param name="TimeIds">How many time ids (6: original size, crop, target size).</param>
internal sealed record AddedTimeEmbedding(int TextEmbedsDim, int TimeEmbedDim, int TimeIds = 6);

/// <summary>The parts of diffusers' UNet2DConditionModel config that shape the network.</summary>
internal sealed record UNetConfig(
    int[] BlockOutChannels,
    bool[] CrossAttention,
    int LayersPerBlock,
    int[] TransformerDepth,
    int MidTransformerDepth,
    int[] Heads,
    int CrossAttentionDim,
    int NormGroups,
    bool LinearProjection,
    AddedTimeEmbedding? AddedEmbedding,
    int InChannels = 4,
    int OutChannels = 4);

/// <summary>diffusers' UNet2DConditionModel (CrossAttnDownBlock2D/DownBlock2D, UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D/UpBlock2D).</summary>
internal sealed class UNetBuilder(OnnxGraphBuilder g, UNetConfig config)
{
    private const float ResnetEpsilon = 1e-5f;
    private const float TransformerNormEpsilon = 1e-6f;
    private readonly Stack<(string Value, int Channels)> _skips = new();
    private string _timeEmbedding = "";

    public void Build(int latentSize, int tokens)
    {
        var f = g.FloatType;
        var c0 = config.BlockOutChannels[0];
        var timeDim = TimeEmbeddingWidth;
        var sample = g.Input("sample", f, 1, config.InChannels, latentSize, latentSize);
        var timestep = g.Input("timestep", f, 1);
        var context = g.Input("encoder_hidden_states", f, 1, tokens, config.CrossAttentionDim);
        var added = config.AddedEmbedding;
        var textEmbeds = added is null ? null : g.Input("text_embeds", f, 1, added.TextEmbedsDim);
        var timeIds = added is null ? null : g.Input("time_ids", f, 1, added.TimeIds);

        string time;
        using (g.Scope("time_proj")) time = g.SinusoidalEmbedding(timestep, c0);
        _timeEmbedding = TimestepEmbedding("time_embedding", time, c0, timeDim);
        if (added is not null)
        {
            string timeIdEmbeds;
            using (g.Scope("add_time_proj"))
            {
                // time_embeds.reshape((text_embeds.shape[0], -1)): the batch is read from text_embeds, not baked in.
                var embedded = g.SinusoidalEmbedding(g.Node("Reshape", [timeIds!, g.Ints(-1)]), added.TimeEmbedDim);
                var batch = g.Node("Unsqueeze", [g.Node("Gather", [g.Node("Shape", [textEmbeds!]), g.Constant([0L])], OnnxAttribute.Int("axis", 0)), g.Ints(0)]);
                timeIdEmbeds = g.Node("Reshape", [embedded, g.Node("Concat", [batch, g.Ints(-1)], OnnxAttribute.Int("axis", 0))]);
            }
            var combined = g.Node("Concat", [textEmbeds!, timeIdEmbeds], OnnxAttribute.Int("axis", -1));
            var addedDim = added.TextEmbedsDim + added.TimeIds * added.TimeEmbedDim;
            _timeEmbedding = g.Node("Add", [_timeEmbedding, TimestepEmbedding("add_embedding", combined, addedDim, timeDim)]);
        }

        var h = g.Conv2d("conv_in", sample, config.InChannels, c0, 3);
        _skips.Push((h, c0));
        var channels = c0;
        var levels = config.BlockOutChannels.Length;
        for (var i = 0; i < levels; i++)
        {
            using var _ = g.Scope($"down_blocks.{i}");
            var output = config.BlockOutChannels[i];
            for (var j = 0; j < config.LayersPerBlock; j++)
            {
                h = Resnet($"resnets.{j}", h, channels, output);
                channels = output;
                if (config.CrossAttention[i]) h = Transformer($"attentions.{j}", h, channels, config.Heads[i], config.TransformerDepth[i], context);
                _skips.Push((h, channels));
            }
            if (i < levels - 1)
            {
                h = g.Conv2d("downsamplers.0.conv", h, channels, channels, 3, stride: 2);
                _skips.Push((h, channels));
            }
        }

        using (g.Scope("mid_block"))
        {
            h = Resnet("resnets.0", h, channels, channels);
            h = Transformer("attentions.0", h, channels, config.Heads[^1], config.MidTransformerDepth, context);
            h = Resnet("resnets.1", h, channels, channels);
        }

        for (var i = 0; i < levels; i++)
        {
            using var _ = g.Scope($"up_blocks.{i}");
            var level = levels - 1 - i;
            var output = config.BlockOutChannels[level];
            for (var j = 0; j <= config.LayersPerBlock; j++)
            {
                var (skip, skipChannels) = _skips.Pop();
                h = g.Node("Concat", [h, skip], OnnxAttribute.Int("axis", 1));
                h = Resnet($"resnets.{j}", h, channels + skipChannels, output);
                channels = output;
                if (config.CrossAttention[level]) h = Transformer($"attentions.{j}", h, channels, config.Heads[level], config.TransformerDepth[level], context);
            }
            if (i < levels - 1)
                h = g.Conv2d("upsamplers.0.conv", g.Upsample2x(h), channels, channels, 3);
        }

        h = g.Silu(g.GroupNorm("conv_norm_out", h, channels, config.NormGroups, ResnetEpsilon));
        h = g.Conv2d("conv_out", h, channels, config.OutChannels, 3);
        g.Output(h, "out_sample", f, 1, config.OutChannels, latentSize, latentSize);
    }

    /// <summary>TimestepEmbedding: linear_1, SiLU, linear_2.</summary>
    private string TimestepEmbedding(string name, string x, int inDim, int timeDim)
    {
        using var _ = g.Scope(name);
        var hidden = g.Silu(g.Linear("linear_1", x, inDim, timeDim, twoDimensional: true));
        return g.Linear("linear_2", hidden, timeDim, timeDim, twoDimensional: true);
    }

    /// <summary>ResnetBlock2D with the time embedding added after conv1, a 1×1 conv_shortcut when the width changes, output scale 1.</summary>
    private string Resnet(string name, string x, int inChannels, int outChannels)
    {
        using var _ = g.Scope(name);
        var h = g.Conv2d("conv1", g.Silu(g.GroupNorm("norm1", x, inChannels, config.NormGroups, ResnetEpsilon)), inChannels, outChannels, 3);
        var time = g.Linear("time_emb_proj", g.Silu(_timeEmbedding), TimeEmbeddingWidth, outChannels, twoDimensional: true);
        h = g.Node("Add", [h, g.Node("Unsqueeze", [time, g.Ints(2, 3)])]);
        h = g.Conv2d("conv2", g.Silu(g.GroupNorm("norm2", h, outChannels, config.NormGroups, ResnetEpsilon)), outChannels, outChannels, 3);
        var shortcut = inChannels == outChannels ? x : g.Conv2d("conv_shortcut", x, inChannels, outChannels, 1);
        return g.Node("Div", [g.Node("Add", [shortcut, h]), g.Scalar(1)]);
    }

    private int TimeEmbeddingWidth => config.BlockOutChannels[0] * 4;

    /// <summary>Transformer2DModel: GroupNorm, proj_in (1×1 conv, or linear on tokens for SDXL), BasicTransformerBlocks, proj_out, residual.</summary>
    private string Transformer(string name, string x, int channels, int heads, int depth, string context)
    {
        using var _ = g.Scope(name);
        var h = g.GroupNorm("norm", x, channels, config.NormGroups, TransformerNormEpsilon);
        h = config.LinearProjection
            ? g.Linear("proj_in", g.ToTokens(h, channels), channels, channels)
            : g.ToTokens(g.Conv2d("proj_in", h, channels, channels, 1), channels);
        for (var d = 0; d < depth; d++) h = TransformerBlock($"transformer_blocks.{d}", h, channels, heads, context);
        h = config.LinearProjection
            ? g.FromTokens(g.Linear("proj_out", h, channels, channels), x)
            : g.Conv2d("proj_out", g.FromTokens(h, x), channels, channels, 1);
        return g.Node("Add", [h, x]);
    }

    /// <summary>BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward, each pre-LayerNorm with a residual.</summary>
    private string TransformerBlock(string name, string x, int channels, int heads, string context)
    {
        using var _ = g.Scope(name);
        var h = g.Node("Add", [g.Attention("attn1", g.LayerNorm("norm1", x, channels), null, channels, channels, heads, AttentionNames.Diffusers, projectionBias: false), x]);
        h = g.Node("Add", [g.Attention("attn2", g.LayerNorm("norm2", h, channels), context, channels, config.CrossAttentionDim, heads, AttentionNames.Diffusers, projectionBias: false), h]);
        return g.Node("Add", [FeedForward("ff", g.LayerNorm("norm3", h, channels), channels), h]);
    }

    /// <summary>FeedForward with GEGLU: proj to 2×4·C, split in halves, hidden·GELU(gate), then back to C.</summary>
    private string FeedForward(string name, string x, int channels)
    {
        using var _ = g.Scope(name);
        var inner = channels * 4;
        string gated;
        using (g.Scope("net.0"))
        {
            var projected = g.Linear("proj", x, channels, inner * 2);
            var axis = g.Ints(-1);
            var hidden = g.Node("Slice", [projected, g.Ints(0), g.Ints(inner), axis]);
            var gate = g.Node("Slice", [projected, g.Ints(inner), g.Ints(inner * 2), axis]);
            gated = g.Node("Mul", [hidden, g.Gelu(gate)]);
        }
        return g.Linear("net.2", gated, inner, channels);
    }
}
