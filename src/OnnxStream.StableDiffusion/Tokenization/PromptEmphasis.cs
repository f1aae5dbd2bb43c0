using System.Globalization;

namespace OnnxStream.StableDiffusion.Tokenization;

/// <summary>
/// Prompt emphasis as AUTOMATIC1111's stable-diffusion-webui writes it (<c>modules/prompt_parser.py</c>,
/// <c>parse_prompt_attention</c>, and <c>sd_hijack_clip.py</c> for the weighting):
/// <c>(text)</c> multiplies the weight of its tokens by 1.1, <c>[text]</c> divides it by 1.1, <c>(text:1.3)</c> multiplies
/// it by 1.3; brackets nest and multiply; <c>\(</c>, <c>\)</c>, <c>\[</c>, <c>\]</c> and <c>\\</c> are literal characters;
/// an unclosed bracket applies to the rest of the prompt, an unmatched closing one is literal text, a lone <c>\</c> is dropped.
/// (webui's <c>BREAK</c> keyword is not supported: prompts are one 77-token window.)
/// </summary>
public static class PromptEmphasis
{
    /// <summary>The weight factor of <c>( )</c>.</summary>
    public const double RoundBracketFactor = 1.1;

    /// <summary>The weight factor of <c>[ ]</c>.</summary>
    public const double SquareBracketFactor = 1 / 1.1;

    /// <summary>Splits a prompt into runs of equal weight, in order; adjacent runs of the same weight are joined.
    /// An empty prompt gives one empty run of weight 1.</summary>
    public static IReadOnlyList<PromptFragment> Parse(string prompt)
    {
        var texts = new List<string>();
        var weights = new List<double>();
        var round = new Stack<int>();
        var square = new Stack<int>();

        void Multiply(int from, double factor)
        {
            for (var k = from; k < weights.Count; k++) weights[k] *= factor;
        }

        var i = 0;
        while (i < prompt.Length)
        {
            var c = prompt[i];
            if (c == '\\')
            {
                // An escape takes the next character literally when it is one of ( ) [ ] \ ; webui drops a lone '\'.
                var escaped = i + 1 < prompt.Length && prompt[i + 1] is '(' or ')' or '[' or ']' or '\\';
                if (escaped)
                {
                    texts.Add(prompt[i + 1].ToString());
                    weights.Add(1.0);
                }
                i += escaped ? 2 : 1;
                continue;
            }
            if (c == '(') { round.Push(texts.Count); i++; continue; }
            if (c == '[') { square.Push(texts.Count); i++; continue; }
            if (c == ':' && TryReadWeight(prompt, i, out var weight, out var end) && round.Count > 0)
            {
                Multiply(round.Pop(), weight);
                i = end;
                continue;
            }
            if (c == ')' && round.Count > 0) { Multiply(round.Pop(), RoundBracketFactor); i++; continue; }
            if (c == ']' && square.Count > 0) { Multiply(square.Pop(), SquareBracketFactor); i++; continue; }

            // Plain text: a run of anything but \ ( ) [ ] : — or one such character that had no role above.
            var start = i;
            if (c is ')' or ']' or ':') i++;
            else
                while (i < prompt.Length && prompt[i] is not ('\\' or '(' or ')' or '[' or ']' or ':')) i++;
            texts.Add(prompt[start..i]);
            weights.Add(1.0);
        }
        foreach (var position in round) Multiply(position, RoundBracketFactor);
        foreach (var position in square) Multiply(position, SquareBracketFactor);

        var fragments = new List<PromptFragment>();
        for (var k = 0; k < texts.Count; k++)
        {
            if (fragments.Count > 0 && fragments[^1].Weight == weights[k])
                fragments[^1] = fragments[^1] with { Text = fragments[^1].Text + texts[k] };
            else fragments.Add(new PromptFragment(texts[k], weights[k]));
        }
        if (fragments.Count == 0) fragments.Add(new PromptFragment("", 1.0));
        return fragments;
    }

    /// <summary>
    /// Weights text-encoder output by token and restores its mean, as webui does: z ← z·w (each token's
    /// hidden vector times its weight), then z ← z·(mean before / mean after), means over the whole tensor.
    /// Does nothing when every weight is 1.
    /// </summary>
    /// <param name="hiddenStates">The encoder output for one prompt, [tokens, hidden] in row-major order.</param>
    /// <param name="tokenWeights">One weight per token (<see cref="TokenizedPrompt.Weights"/>).</param>
    public static void Apply(Span<float> hiddenStates, ReadOnlySpan<float> tokenWeights)
    {
        if (tokenWeights.Length == 0 || hiddenStates.Length % tokenWeights.Length != 0)
            throw new ArgumentException(
                $"The encoder output has {hiddenStates.Length} values, not a whole number of rows for {tokenWeights.Length} token weights.");
        var allOne = true;
        foreach (var w in tokenWeights) allOne &= w == 1f;
        if (allOne) return;

        var hidden = hiddenStates.Length / tokenWeights.Length;
        double before = 0, after = 0;
        for (var t = 0; t < tokenWeights.Length; t++)
        {
            var row = hiddenStates.Slice(t * hidden, hidden);
            for (var j = 0; j < row.Length; j++)
            {
                before += row[j];
                row[j] *= tokenWeights[t];
                after += row[j];
            }
        }
        // A zero mean after weighting leaves nothing to rescale by (webui would produce NaN/inf here).
        if (after == 0) return;
        var restore = (float)(before / after);
        foreach (ref var v in hiddenStates) v *= restore;
    }

    /// <summary>Matches <c>:\s*([+-]?[.\d]+)\s*\)</c> at <paramref name="colon"/>.</summary>
    private static bool TryReadWeight(string prompt, int colon, out double weight, out int end)
    {
        weight = 0;
        end = colon + 1;
        while (end < prompt.Length && char.IsWhiteSpace(prompt[end])) end++;
        var numberStart = end;
        if (end < prompt.Length && prompt[end] is '+' or '-') end++;
        var digitsStart = end;
        while (end < prompt.Length && (prompt[end] == '.' || char.IsAsciiDigit(prompt[end]))) end++;
        if (end == digitsStart) return false;
        var number = prompt[numberStart..end];
        while (end < prompt.Length && char.IsWhiteSpace(prompt[end])) end++;
        if (end >= prompt.Length || prompt[end] != ')') return false;
        end++;
        // webui calls float() on the match; a malformed number such as "1.2.3" is taken as text instead of failing.
        return double.TryParse(number, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out weight);
    }
}
