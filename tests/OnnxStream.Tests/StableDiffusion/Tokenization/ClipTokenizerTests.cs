using OnnxStream.StableDiffusion.Tokenization;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.StableDiffusion.Tokenization;

/// <summary>
/// The tokenizer on the REAL CLIP vocabulary (../shared/models/clip-tokenizer). Expected ids: the first prompt's are
/// the published SD 1.5 / CLIP ViT-L/14 ids of "a photo of an astronaut riding a horse on mars"; the others were
/// computed by openai/CLIP's <c>simple_tokenizer.py</c> algorithm (its code, minus ftfy, run with Python's
/// <c>regex</c> module on <c>bpe_simple_vocab_16e6.txt.gz</c>) — none by this project's code.
/// </summary>
internal sealed class ClipTokenizerTests
{
    private static ClipTokenizer? _fromJson;

    private static ClipTokenizer FromJson => _fromJson ??=
        ClipTokenizer.FromFolder(SharedFixtures.Require("models/clip-tokenizer"));

    [Test]
    public void The_astronaut_prompt_gives_the_published_ids_padded_with_the_end_token()
    {
        var ids = FromJson.Tokenize("a photo of an astronaut riding a horse on mars");

        int[] expected = [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407];
        Assert.That(ids, Has.Length.EqualTo(77));
        Assert.That(ids[..12], Is.EqualTo(expected));
        Assert.That(ids[12..], Is.All.EqualTo(49407));
    }

    [TestCase("Hello world!", new[] { 3306, 1002, 256 })]
    [TestCase("A cat's toy, don't you think?", new[] { 320, 2368, 568, 5988, 267, 847, 713, 592, 1331, 286 })]
    [TestCase("  Multiple   spaces\tand\nnewlines  ", new[] { 6470, 9006, 537, 1218, 3418 })]
    [TestCase("rock'n'roll 1234 3.14 !!! ...", new[] { 2172, 262, 333, 262, 3341, 272, 273, 274, 275, 274, 269, 272, 275, 995, 678 })]
    [TestCase("café naïve Zürich", new[] { 15304, 1097, 35689, 563, 89, 6522, 4021 })]
    [TestCase("日本語のテキスト", new[] { 39121, 44353, 34002, 252, 21575, 2429, 228, 47121, 32421, 486 })]
    [TestCase("emoji 😀👍 test", new[] { 16327, 12832, 4201, 1628 })]
    [TestCase("&amp; &lt;tag&gt; &amp;amp;", new[] { 261, 283, 3640, 285, 261 })]
    [TestCase("<|endoftext|> inside", new[] { 49407, 2912 })]
    [TestCase("supercalifragilisticexpialidocious", new[] { 1642, 2857, 13093, 2076, 5868, 26850, 835, 639, 38466 })]
    [TestCase("WE'LL THEY'RE I'M", new[] { 649, 1342, 889, 982, 328, 880 })]
    [TestCase("a-b_c/d", new[] { 320, 268, 321, 318, 322, 270, 323 })]
    [TestCase("masterpiece, best quality", new[] { 12066, 267, 949, 3027 })]
    [TestCase("", new int[0])]
    public void Encodes_as_openai_clip_does(string text, int[] expected) =>
        Assert.That(FromJson.Encode(text), Is.EqualTo(expected));

    [TestCase("don\u2019t \u201Cquoted\u201D", "don't \"quoted\"")]
    [TestCase("\uFF21\uFF22\uFF23\u3000\uFF11\uFF12", "ABC 12")]
    [TestCase("\uFB01ne \uFB02ow", "fine flow")]
    [TestCase("cafe\u0301", "caf\u00E9")]
    [TestCase("bell\u0007 \uFEFFmark", "bell mark")]
    public void Cleans_text_as_ftfy_does(string raw, string equivalent) =>
        Assert.That(FromJson.Encode(raw), Is.EqualTo(FromJson.Encode(equivalent)));

    [Test]
    public void The_three_vocabulary_layouts_load_the_same_tokenizer()
    {
        var folder = SharedFixtures.Require("models/clip-tokenizer");
        var fromText = ClipTokenizer.FromFiles(Path.Combine(folder, "onnxstream/vocab.txt"), Path.Combine(folder, "onnxstream/merges.txt"));
        var fromGz = ClipTokenizer.FromOpenAiBpe(Path.Combine(folder, "bpe_simple_vocab_16e6.txt.gz"));

        foreach (var tokenizer in new[] { FromJson, fromText, fromGz })
        {
            Assert.That(tokenizer.VocabularySize, Is.EqualTo(49408));
            Assert.That((tokenizer.StartTokenId, tokenizer.EndTokenId, tokenizer.PadTokenId), Is.EqualTo((49406, 49407, 49407)));
        }
        // Words that need long merge chains, rare words and non-ASCII: any rank or id difference shows.
        const string text = "photograph of a hyperrealistic xylophone, Ünïcödé, 1999, mountains; supercalifragilistic!";
        Assert.That(fromText.Encode(text), Is.EqualTo(FromJson.Encode(text)));
        Assert.That(fromGz.Encode(text), Is.EqualTo(FromJson.Encode(text)));
    }

    [Test]
    public void Long_prompts_are_cut_to_75_tokens_and_keep_the_end_token()
    {
        var ids = FromJson.Tokenize(string.Join(' ', Enumerable.Repeat("cat", 100)));

        Assert.That(ids, Has.Length.EqualTo(77));
        Assert.That(ids[0], Is.EqualTo(49406));
        Assert.That(ids[1..76], Is.All.EqualTo(2368));
        Assert.That(ids[76], Is.EqualTo(49407));
    }

    [Test]
    public void A_pad_token_option_pads_after_the_end_token()
    {
        var tokenizer = ClipTokenizer.FromFolder(SharedFixtures.Require("models/clip-tokenizer"), new ClipTokenizerOptions { PadToken = "!" });

        var ids = tokenizer.Tokenize("a red cat");

        Assert.That(ids[..5], Is.EqualTo(new[] { 49406, 320, 736, 2368, 49407 }));
        Assert.That(ids[5..], Is.All.EqualTo(0));
    }

    [Test]
    public void Weighted_prompts_tokenize_each_run_and_weight_its_tokens()
    {
        var prompt = FromJson.TokenizeWeighted("a (red:1.5) [cat]");

        Assert.That(prompt.Ids[..5], Is.EqualTo(new[] { 49406, 320, 736, 2368, 49407 }));
        Assert.That(prompt.Weights[..5], Is.EqualTo(new[] { 1f, 1f, 1.5f, (float)(1 / 1.1), 1f }));
        Assert.That(prompt.Weights[5..], Is.All.EqualTo(1f));
        Assert.That(prompt.HasEmphasis);
        // Without emphasis syntax the weighted form is the plain one.
        var plain = FromJson.TokenizeWeighted("a red cat");
        Assert.That(plain.Ids, Is.EqualTo(FromJson.Tokenize("a red cat")));
        Assert.That(plain.HasEmphasis, Is.False);
        // Taken literally, the brackets and the weight are tokens.
        Assert.That(FromJson.Encode("a (red:1.5) cat"), Is.EqualTo(new[] { 320, 263, 736, 281, 272, 269, 276, 264, 2368 }));
    }
}
