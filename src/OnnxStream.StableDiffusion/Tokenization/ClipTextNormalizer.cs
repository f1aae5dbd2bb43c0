using System.Net;
using System.Text;

namespace OnnxStream.StableDiffusion.Tokenization;

/// <summary>
/// CLIP's text clean-up and pre-split (openai/CLIP <c>simple_tokenizer.py</c>): <c>ftfy.fix_text</c>, HTML
/// unescaping twice, whitespace collapsing, lower-casing; then the split pattern
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>.
/// </summary>
/// <remarks>
/// Of ftfy's <c>fix_text</c> this does what changes prompts in practice: lone surrogates to U+FFFD, control
/// characters removed, curly quotes to straight ones, Latin ligatures and full/half-width forms to their
/// compatibility equivalents, HTML entities decoded when the text holds no '&lt;', NFC. It does not repair
/// mojibake (UTF-8 decoded as Latin-1/cp1252). HTML entities are decoded by <see cref="WebUtility.HtmlDecode(string)"/>,
/// which wants the closing ';' that Python's <c>html.unescape</c> sometimes does without.
/// The split works on Unicode scalar values (so letters outside the BMP count as letters, as in Python).
/// </remarks>
internal static class ClipTextNormalizer
{
    private static readonly string[] SpecialTokens = ["<|startoftext|>", "<|endoftext|>"];
    private static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    /// <summary>The cleaned, whitespace-collapsed, lower-cased text.</summary>
    public static string Clean(string text)
    {
        text = FixText(text);
        text = WebUtility.HtmlDecode(WebUtility.HtmlDecode(text));
        return CollapseWhitespace(text).ToLowerInvariant();
    }

    /// <summary>The pieces of cleaned text that BPE encodes one at a time.</summary>
    public static List<string> Split(string cleaned)
    {
        var pieces = new List<string>();
        var i = 0;
        while (i < cleaned.Length)
        {
            var rune = Rune.GetRuneAt(cleaned, i);
            var length = MatchAt(cleaned, i, rune);
            if (length > 0) pieces.Add(cleaned.Substring(i, length));
            i += Math.Max(length, rune.Utf16SequenceLength);
        }
        return pieces;
    }

    /// <summary>The length of the piece starting at <paramref name="start"/>, 0 for whitespace (skipped).</summary>
    private static int MatchAt(string text, int start, Rune first)
    {
        // The alternatives in the pattern's order: the first that matches at this position wins.
        foreach (var special in SpecialTokens)
            if (string.CompareOrdinal(text, start, special, 0, special.Length) == 0) return special.Length;
        foreach (var contraction in Contractions)
            if (string.Compare(text, start, contraction, 0, contraction.Length, StringComparison.OrdinalIgnoreCase) == 0)
                return contraction.Length;
        if (Rune.IsLetter(first)) return RunLength(text, start, Rune.IsLetter);
        if (Rune.IsNumber(first)) return first.Utf16SequenceLength;
        if (Rune.IsWhiteSpace(first)) return 0;
        return RunLength(text, start, r => !Rune.IsLetter(r) && !Rune.IsNumber(r) && !Rune.IsWhiteSpace(r));
    }

    private static int RunLength(string text, int start, Func<Rune, bool> belongs)
    {
        var i = start;
        while (i < text.Length)
        {
            var rune = Rune.GetRuneAt(text, i);
            if (!belongs(rune)) break;
            i += rune.Utf16SequenceLength;
        }
        return i - start;
    }

    /// <summary>The parts of ftfy's <c>fix_text</c> listed in the class remarks.</summary>
    private static string FixText(string text)
    {
        var builder = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsSurrogate(c))
            {
                if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                {
                    builder.Append(c).Append(text[++i]);
                }
                else builder.Append('\uFFFD');
                continue;
            }
            if (IsRemovedControl(c)) continue;
            switch (c)
            {
                case '\u02BC' or >= '\u2018' and <= '\u201B': builder.Append('\''); break;
                case >= '\u201C' and <= '\u201F': builder.Append('"'); break;
                case '\u3000': builder.Append(' '); break;
                default:
                    if (IsLigature(c) || c is >= '\uFF01' and <= '\uFFEF')
                        builder.Append(c.ToString().Normalize(NormalizationForm.FormKC));
                    else builder.Append(c);
                    break;
            }
        }
        text = builder.ToString();
        // ftfy's unescape_html="auto": entities are decoded unless the text looks like HTML.
        if (!text.Contains('<')) text = WebUtility.HtmlDecode(text);
        return text.Normalize(NormalizationForm.FormC);
    }

    // ftfy's CONTROL_CHARS (the BMP part): C0 controls but \t \n \f \r, DEL, deprecated format characters,
    // the BOM and the interlinear annotation/object replacement marks.
    private static bool IsRemovedControl(char c) =>
        c is <= '\u0008' or '\u000B' or >= '\u000E' and <= '\u001F' or '\u007F'
            or >= '\u206A' and <= '\u206F' or '\uFEFF' or >= '\uFFF9' and <= '\uFFFC';

    // ftfy's LIGATURES: the Latin digraphs and the ff/fi/fl/ffi/ffl/st ligatures.
    private static bool IsLigature(char c) =>
        c is '\u0132' or '\u0133' or '\u0149' or >= '\u01C4' and <= '\u01CC' or >= '\u01F1' and <= '\u01F3'
            or >= '\uFB00' and <= '\uFB06';

    private static string CollapseWhitespace(string text)
    {
        var builder = new StringBuilder(text.Length);
        var pendingSpace = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c)) { pendingSpace = builder.Length > 0; continue; }
            if (pendingSpace) builder.Append(' ');
            pendingSpace = false;
            builder.Append(c);
        }
        return builder.ToString();
    }
}
