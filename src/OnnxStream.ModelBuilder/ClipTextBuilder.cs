namespace OnnxStream.ModelBuilder;

/// <summary>The parts of transformers' CLIPTextConfig that shape the network (and the projection of CLIPTextModelWithProjection).</summary>
/// <param name="VocabSize">Token embedding rows.</param>
/// <param name="Hidden">Width of the hidden states.</param>
/// <param name="Intermediate">Width of the MLP.</param>
/// <param name="Layers">Encoder layers.</param>
/// <param name="Heads">Attention heads.</param>
/// <param name="QuickGelu">hidden_act quick_gelu (OpenAI CLIP) rather than exact gelu (OpenCLIP).</param>
/// <param name="ProjectionDim">text_projection's width, or 0 for CLIPTextModel (pooler_output unprojected).</param>
/// <param name="PenultimateOutput">Also output the hidden state before the last layer (hidden_states.{layers-1}), as SDXL reads it.</param>
/// <param name="Positions">Position embedding rows (the token count of input_ids).</param>
internal sealed record ClipTextConfig(int VocabSize, int Hidden, int Intermediate, int Layers, int Heads, bool QuickGelu, int ProjectionDim, bool PenultimateOutput, int Positions = 77);

/// <summary>
/// transformers' CLIPTextModel (or CLIPTextModelWithProjection): token and position embeddings, pre-LayerNorm
/// layers with causal self-attention, final LayerNorm, and the pooled state at the end-of-text token (the
/// largest id, ArgMax).
/// </summary>
internal sealed class ClipTextBuilder(OnnxGraphBuilder g, ClipTextConfig config)
{
    public void Build()
    {
        var f = g.FloatType;
        var d = config.Hidden;
        var n = config.Positions;
        var inputIds = g.Input("input_ids", OnnxElementType.Int64, 1, n);
        string hidden;
        string? penultimate = null;
        using (g.Scope("text_model"))
        {
            using (g.Scope("embeddings"))
            {
                string tokens, positions;
                using (g.Scope("token_embedding"))
                    tokens = g.Node("Gather", [g.Parameter("weight", [config.VocabSize, d], WeightInit.Uniform(0.5f)), inputIds]);
                using (g.Scope("position_embedding"))
                    positions = g.Node("Gather", [g.Parameter("weight", [n, d], WeightInit.Uniform(0.5f)), g.Constant(Enumerable.Range(0, n).Select(i => (long)i).ToArray(), 1, n)]);
                hidden = g.Node("Add", [tokens, positions]);
            }
            // The causal mask: the lowest finite value above the diagonal (torch.finfo(dtype).min), 0 elsewhere.
            var lowest = f == OnnxElementType.Float16 ? (float)Half.MinValue : float.MinValue;
            var mask = g.Constant(Enumerable.Range(0, n * n).Select(k => k % n > k / n ? lowest : 0f).ToArray(), 1, 1, n, n);
            using (g.Scope("encoder"))
                for (var layer = 0; layer < config.Layers; layer++)
                {
                    if (layer == config.Layers - 1) penultimate = hidden;
                    hidden = Layer($"layers.{layer}", hidden, mask);
                }
            hidden = g.LayerNorm("final_layer_norm", hidden, d);
        }

        var endOfText = g.Node("ArgMax", [inputIds], OnnxAttribute.Int("axis", -1), OnnxAttribute.Int("keepdims", 0));
        var pooled = g.Node("Squeeze", [g.Node("Gather", [hidden, endOfText], OnnxAttribute.Int("axis", 1)), g.Ints(1)]);
        if (config.ProjectionDim > 0)
        {
            g.Output(g.Linear("text_projection", pooled, d, config.ProjectionDim, bias: false), "text_embeds", f, 1, config.ProjectionDim);
            g.Output(hidden, "last_hidden_state", f, 1, n, d);
        }
        else
        {
            g.Output(hidden, "last_hidden_state", f, 1, n, d);
            g.Output(pooled, "pooler_output", f, 1, d);
        }
        if (config.PenultimateOutput) g.Output(penultimate!, $"hidden_states.{config.Layers - 1}", f, 1, n, d);
    }

    /// <summary>CLIPEncoderLayer: LayerNorm, causal self-attention, residual; LayerNorm, MLP, residual.</summary>
    private string Layer(string name, string x, string mask)
    {
        using var _ = g.Scope(name);
        var d = config.Hidden;
        var attended = g.Attention("self_attn", g.LayerNorm("layer_norm1", x, d), null, d, d, config.Heads, AttentionNames.Transformers,
            projectionBias: true, additiveMask: mask, scaleQuery: true);
        var h = g.Node("Add", [x, attended]);
        var normalized = g.LayerNorm("layer_norm2", h, d);
        string mlp;
        using (g.Scope("mlp"))
        {
            var up = g.Linear("fc1", normalized, d, config.Intermediate);
            mlp = g.Linear("fc2", config.QuickGelu ? g.QuickGelu(up) : g.Gelu(up), config.Intermediate, d);
        }
        return g.Node("Add", [h, mlp]);
    }
}
