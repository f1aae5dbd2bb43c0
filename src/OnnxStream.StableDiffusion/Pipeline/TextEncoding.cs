using System.Text.RegularExpressions;
using OnnxStream.StableDiffusion.Tokenization;
using OnnxStream.Tensors;

namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>A prompt's conditioning: per-token hidden states, and SDXL's pooled embedding.</summary>
/// <param name="Hidden">77 × <paramref name="Width"/> values.</param>
/// <param name="Width">Channels per token (768 for SD 1.5, 2048 for SDXL).</param>
/// <param name="Pooled">SDXL's pooled text embedding (1280 values); null for SD 1.5.</param>
public sealed record TextConditioning(float[] Hidden, int Width, float[]? Pooled);

/// <summary>Runs CLIP text encoders the way each model reads them.</summary>
internal static partial class TextEncoding
{
    /// <summary>
    /// The hidden states of <paramref name="prompt"/> taken from output <paramref name="hiddenOutput"/> (and the pooled
    /// output <paramref name="pooledOutput"/> when given), with the prompt's emphasis weights applied to the hidden
    /// states (<see cref="PromptEmphasis.Apply"/>; the pooled output is not weighted, as in webui).
    /// </summary>
    public static (float[] Hidden, int Width, float[]? Pooled) Encode(IComponentModel encoder, string path, TokenizedPrompt prompt, string hiddenOutput,
        string? pooledOutput, CancellationToken cancellationToken)
    {
        if (encoder.Inputs.Count != 1)
            throw new ArgumentException($"{path}: a text encoder has one input (the token ids); this one has {encoder.Inputs.Count}.");
        var input = encoder.Inputs[0];
        var length = prompt.Ids.Length;
        using var ids = input.ElementType == ElementType.Int32
            ? Tensor.From<int>(prompt.Ids, [1, length], encoder.Allocator)
            : Tensor.From<long>(prompt.Ids.Select(i => (long)i).ToArray(), [1, length], encoder.Allocator);
        var outputs = pooledOutput is null ? new[] { hiddenOutput } : [hiddenOutput, pooledOutput];
        using var result = Run(encoder, path, new Dictionary<string, Tensor> { [input.Name] = ids }, outputs, cancellationToken);
        var hidden = result[hiddenOutput];
        if (hidden.Shape is not [1, var tokens, var width] || tokens != length)
            throw new InvalidOperationException($"{path}: the text encoder's '{hiddenOutput}' is [{string.Join(',', hidden.Shape)}]; expected [1,{length},channels].");
        var values = hidden.Span<float>().ToArray();
        PromptEmphasis.Apply(values, prompt.Weights);
        return (values, width, pooledOutput is null ? null : result[pooledOutput].Span<float>().ToArray());
    }

    /// <summary>Runs the encoder; an output it does not have (the engine says so with an ArgumentException) is reported with its path.</summary>
    private static ComponentOutputs Run(IComponentModel encoder, string path, Dictionary<string, Tensor> inputs, string[] outputs, CancellationToken cancellationToken)
    {
        try
        {
            return encoder.Run(inputs, outputs, cancellationToken);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// The output holding the penultimate layer's hidden states, as SDXL reads both encoders: of the graph outputs named
    /// <c>hidden_states.N</c>, the second-to-last when the export gives all layers (optimum), the only one otherwise. The
    /// original's folders have none (their exports' outputs were renamed <c>out_N</c>, and the hidden states are consumed by
    /// later layers, so not graph outputs): there it is the intermediate tensor the original app keeps as an extra output,
    /// <paramref name="originalName"/> (<c>out_13</c> for encoder 1, <c>out_33</c> for encoder 2).
    /// </summary>
    public static string PenultimateOutput(IComponentModel encoder, string originalName)
    {
        var layers = encoder.Outputs.Select(o => (Name: o, Match: HiddenStates().Match(o))).Where(o => o.Match.Success)
            .OrderBy(o => int.Parse(o.Match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).Select(o => o.Name).ToList();
        return layers.Count switch
        {
            0 => originalName,
            1 => layers[0],
            _ => layers[^2],
        };
    }

    /// <summary>The second text encoder's pooled projection: <c>text_embeds</c>, or <c>out_0</c> in the original's folders.</summary>
    public static string PooledOutput(IComponentModel encoder, string path) =>
        encoder.Outputs.FirstOrDefault(o => o is "text_embeds" or "out_0")
        ?? throw new ArgumentException($"{path}: the second text encoder has no text_embeds (or out_0) output (its outputs: {string.Join(", ", encoder.Outputs)}).");

    [GeneratedRegex(@"^hidden_states\.(\d+)$")]
    private static partial Regex HiddenStates();
}
