namespace OnnxStream.ModelBuilder;

/// <summary>The parts of diffusers' AutoencoderKL config that shape the decoder.</summary>
internal sealed record VaeDecoderConfig(int[] BlockOutChannels, int LayersPerBlock, int NormGroups, int LatentChannels = 4, int OutChannels = 3);

/// <summary>
/// AutoencoderKL's decode as optimum exports it (vae_decoder): post_quant_conv, then the Decoder (conv_in,
/// UNetMidBlock2D with one single-head attention, UpDecoderBlock2Ds, conv_norm_out, SiLU, conv_out).
/// </summary>
internal sealed class VaeDecoderBuilder(OnnxGraphBuilder g, VaeDecoderConfig config)
{
    private const float Epsilon = 1e-6f;

    public void Build(int latentSize)
    {
        var f = g.FloatType;
        var latent = g.Input("latent_sample", f, 1, config.LatentChannels, latentSize, latentSize);
        var h = g.Conv2d("post_quant_conv", latent, config.LatentChannels, config.LatentChannels, 1);
        var levels = config.BlockOutChannels.Length;
        using (g.Scope("decoder"))
        {
            var channels = config.BlockOutChannels[^1];
            h = g.Conv2d("conv_in", h, config.LatentChannels, channels, 3);
            using (g.Scope("mid_block"))
            {
                h = Resnet("resnets.0", h, channels, channels);
                h = Attention("attentions.0", h, channels);
                h = Resnet("resnets.1", h, channels, channels);
            }
            for (var i = 0; i < levels; i++)
            {
                using var _ = g.Scope($"up_blocks.{i}");
                var output = config.BlockOutChannels[levels - 1 - i];
                for (var j = 0; j <= config.LayersPerBlock; j++)
                {
                    h = Resnet($"resnets.{j}", h, channels, output);
                    channels = output;
                }
                if (i < levels - 1) h = g.Conv2d("upsamplers.0.conv", g.Upsample2x(h), channels, channels, 3);
            }
            h = g.Silu(g.GroupNorm("conv_norm_out", h, channels, config.NormGroups, Epsilon));
            h = g.Conv2d("conv_out", h, channels, config.OutChannels, 3);
        }
        var size = latentSize << (levels - 1);
        g.Output(h, "sample", f, 1, config.OutChannels, size, size);
    }

    /// <summary>ResnetBlock2D without a time embedding.</summary>
    private string Resnet(string name, string x, int inChannels, int outChannels)
    {
        using var _ = g.Scope(name);
        var h = g.Conv2d("conv1", g.Silu(g.GroupNorm("norm1", x, inChannels, config.NormGroups, Epsilon)), inChannels, outChannels, 3);
        h = g.Conv2d("conv2", g.Silu(g.GroupNorm("norm2", h, outChannels, config.NormGroups, Epsilon)), outChannels, outChannels, 3);
        var shortcut = inChannels == outChannels ? x : g.Conv2d("conv_shortcut", x, inChannels, outChannels, 1);
        return g.Node("Div", [g.Node("Add", [shortcut, h]), g.Scalar(1)]);
    }

    /// <summary>The mid block's Attention: GroupNorm, one head over the H·W tokens (projections with biases), residual.</summary>
    private string Attention(string name, string x, int channels)
    {
        using var _ = g.Scope(name);
        var tokens = g.ToTokens(g.GroupNorm("group_norm", x, channels, config.NormGroups, Epsilon), channels);
        var attended = g.Attention("", tokens, null, channels, channels, heads: 1, AttentionNames.Diffusers, projectionBias: true);
        return g.Node("Div", [g.Node("Add", [g.FromTokens(attended, x), x]), g.Scalar(1)]);
    }
}
