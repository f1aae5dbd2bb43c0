using OnnxStream.StableDiffusion.Tokenization;

namespace OnnxStream.Tests.StableDiffusion.Tokenization;

/// <summary>
/// Emphasis parsing against the examples published in the docstring of <c>parse_prompt_attention</c>
/// (AUTOMATIC1111 stable-diffusion-webui, modules/prompt_parser.py), and the weighting with mean restoration
/// against a hand computation.
/// </summary>
internal sealed class PromptEmphasisTests
{
    private static (string, double)[] Parse(string prompt) =>
        PromptEmphasis.Parse(prompt).Select(f => (f.Text, f.Weight)).ToArray();

    [Test]
    public void Parses_the_webui_docstring_examples()
    {
        Assert.That(Parse("normal text"), Is.EqualTo(new[] { ("normal text", 1.0) }));
        Assert.That(Parse("an (important) word"), Is.EqualTo(new[] { ("an ", 1.0), ("important", 1.1), (" word", 1.0) }));
        Assert.That(Parse("(unbalanced"), Is.EqualTo(new[] { ("unbalanced", 1.1) }));
        Assert.That(Parse(@"\(literal\]"), Is.EqualTo(new[] { ("(literal]", 1.0) }));
        Assert.That(Parse("(unnecessary)(parens)"), Is.EqualTo(new[] { ("unnecessaryparens", 1.1) }));
        // webui's docstring prints 1.5730000000000004, 0.55, 1.4641000000000006: the same sequence of double
        // multiplications gives the same doubles.
        Assert.That(Parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."), Is.EqualTo(new[]
        {
            ("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
            (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1),
        }));
    }

    [Test]
    public void Handles_square_brackets_weights_and_stray_characters()
    {
        Assert.That(Parse("[faint] [[fainter]]"), Is.EqualTo(new[] { ("faint", 1 / 1.1), (" ", 1.0), ("fainter", 1 / 1.1 / 1.1) }));
        Assert.That(Parse("(a: 0.25 )"), Is.EqualTo(new[] { ("a", 0.25) }));
        Assert.That(Parse("ratio 16:9) x]"), Is.EqualTo(new[] { ("ratio 16:9) x]", 1.0) }));
        Assert.That(Parse(@"back\slash"), Is.EqualTo(new[] { ("backslash", 1.0) }));
        Assert.That(Parse(""), Is.EqualTo(new[] { ("", 1.0) }));
    }

    [Test]
    public void Apply_weights_rows_and_restores_the_mean()
    {
        // Two tokens, hidden size 2: z = [[1, 2], [3, 4]], weights [1, 2].
        // mean before = 10/4 = 2.5; z·w = [[1, 2], [6, 8]], mean 17/4 = 4.25; × 2.5/4.25.
        float[] z = [1, 2, 3, 4];
        PromptEmphasis.Apply(z, [1f, 2f]);

        const double scale = 2.5 / 4.25;
        Assert.That(z, Is.EqualTo(new[] { 1 * scale, 2 * scale, 6 * scale, 8 * scale }).Within(1e-6));
        Assert.That(z.Average(), Is.EqualTo(2.5).Within(1e-6));
    }

    [Test]
    public void Apply_leaves_unweighted_output_untouched_and_refuses_mismatched_sizes()
    {
        float[] z = [1, 2, 3, 4];
        PromptEmphasis.Apply(z, [1f, 1f]);
        Assert.That(z, Is.EqualTo(new[] { 1f, 2f, 3f, 4f }));

        Assert.Throws<ArgumentException>(() => PromptEmphasis.Apply(new float[5], [1f, 2f]));
    }
}
