using OnnxStream.StableDiffusion.Tokenization;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.StableDiffusion.Tokenization;

/// <summary>
/// The tokenizer on tiny-sd15's synthetic 1000-token vocabulary (../shared/models/tiny-sd15/tokenizer), whose
/// text encoder reference input holds the ids the Hugging Face CLIPTokenizer gave, and on a hand-made vocabulary
/// whose BPE results are worked out by hand in the comments.
/// </summary>
internal sealed class SyntheticTokenizerTests
{
    private const string Prompt = "a photo of an astronaut riding a horse on mars";

    [TestCase("vocab.json")]
    [TestCase("vocab.txt")]
    public void The_tiny_sd15_prompt_gives_the_reference_input_ids(string vocabFile)
    {
        var folder = SharedFixtures.Require("models/tiny-sd15/tokenizer");
        var reference = File.ReadAllBytes(SharedFixtures.Require("models/tiny-sd15/text_encoder/ref/input_ids.bin"));
        var expected = new int[reference.Length / sizeof(long)];
        for (var i = 0; i < expected.Length; i++) expected[i] = checked((int)BitConverter.ToInt64(reference, i * sizeof(long)));

        var tokenizer = ClipTokenizer.FromFiles(Path.Combine(folder, vocabFile), Path.Combine(folder, "merges.txt"));

        Assert.That((tokenizer.StartTokenId, tokenizer.EndTokenId, tokenizer.VocabularySize), Is.EqualTo((998, 999, 1000)));
        Assert.That(tokenizer.Tokenize(Prompt), Is.EqualTo(expected));
    }

    [Test]
    public void The_tiny_sd15_folder_loads_with_its_pad_token()
    {
        var tokenizer = ClipTokenizer.FromFolder(SharedFixtures.Require("models/tiny-sd15/tokenizer"));

        Assert.That(tokenizer.PadTokenId, Is.EqualTo(999));
        // Partly merged words: "astronau"+"ts</w>", "photograp"+"h"+"s</w>", unmerged letters for "xyz".
        Assert.That(tokenizer.Encode("astronauts"), Is.EqualTo(new[] { 705, 545 }));
        Assert.That(tokenizer.Encode("Photographs of robots!"), Is.EqualTo(new[] { 709, 71, 338, 686, 798, 256 }));
        Assert.That(tokenizer.Encode("xyz"), Is.EqualTo(new[] { 87, 88, 345 }));
    }

    [Test]
    public void A_pad_token_missing_from_the_vocabulary_or_a_bpe_file_that_is_not_gzip_is_an_error_naming_the_file()
    {
        using var vocab = HandMadeVocabulary.Write(["l o"]);
        var pad = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFiles(vocab.VocabPath, vocab.MergesPath, new ClipTokenizerOptions { PadToken = "no-such-token" }))!;
        Assert.That(pad.Message, Does.StartWith(vocab.VocabPath).And.Contain("no-such-token"));

        var notGzip = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromOpenAiBpe(vocab.MergesPath))!;
        Assert.That(notGzip.Message, Does.StartWith(vocab.MergesPath).And.Contain("not a gzip file"));
    }

    [Test]
    public void Bpe_merges_by_rank_not_by_position()
    {
        // Merges by rank: 0 "l o", 1 "lo w</w>", 2 "e r</w>", 3 "lo w", 4 "w e".
        // "low":   l o w</w> → (l,o) rank 0 → lo w</w> → (lo,w</w>) rank 1 → low</w>.
        // "lower": l o w e r</w> → rank 0: lo w e r</w>; ranks present: (lo,w) 3, (w,e) 4, (e,r</w>) 2 → lo w er</w>;
        //          then (lo,w) 3 → low er</w>; (low,er</w>) has no rank: done. "w e" (rank 4) never applies.
        using var vocab = HandMadeVocabulary.Write(["l o", "lo w</w>", "e r</w>", "lo w", "w e"]);
        var tokenizer = ClipTokenizer.FromFiles(vocab.VocabPath, vocab.MergesPath);

        Assert.That(tokenizer.Encode("low"), Is.EqualTo(new[] { vocab.Id("low</w>") }));
        Assert.That(tokenizer.Encode("lower"), Is.EqualTo(new[] { vocab.Id("low"), vocab.Id("er</w>") }));
        // "lolo": l o l o</w> → only the first (l,o) merges, the last symbol being "o</w>", not "o" → lo l o</w>.
        Assert.That(tokenizer.Encode("lolo"), Is.EqualTo(new[] { vocab.Id("lo"), vocab.Id("l"), vocab.Id("o</w>") }));
        // "lolol": l o l o l</w> → (l,o) twice, left to right → lo lo l</w>.
        Assert.That(tokenizer.Encode("lolol"), Is.EqualTo(new[] { vocab.Id("lo"), vocab.Id("lo"), vocab.Id("l</w>") }));
        // A space is byte 0x20, CLIP alphabet 'Ġ' (U+0120) — but whitespace splits pieces, so it never reaches BPE.
        Assert.That(tokenizer.Encode("low low"), Is.EqualTo(new[] { vocab.Id("low</w>"), vocab.Id("low</w>") }));
    }

    [Test]
    public void Bad_vocabulary_files_are_refused_with_the_file_and_line()
    {
        using var vocab = HandMadeVocabulary.Write(["l o"]);
        File.WriteAllLines(vocab.MergesPath, ["#version: 0.2", "l o", "just-one-symbol"]);
        var error = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFiles(vocab.VocabPath, vocab.MergesPath));
        Assert.That(error!.Message, Does.Contain(vocab.MergesPath).And.Contain("line 3"));

        File.WriteAllLines(vocab.MergesPath, ["l o", "x y"]);
        error = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFiles(vocab.VocabPath, vocab.MergesPath));
        Assert.That(error!.Message, Does.Contain("merge 1").And.Contain("\"x y\""));

        File.WriteAllLines(vocab.MergesPath, ["l o"]);
        File.WriteAllLines(vocab.VocabPath, File.ReadAllLines(vocab.VocabPath).Where(t => t != "<|endoftext|>"));
        error = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFiles(vocab.VocabPath, vocab.MergesPath));
        Assert.That(error!.Message, Does.Contain("<|endoftext|>"));
    }

    /// <summary>A vocab.txt + merges.txt pair in a temporary folder: the 512 byte symbols, the given merges, the
    /// start and end tokens, in that id order.</summary>
    private sealed class HandMadeVocabulary : IDisposable
    {
        private readonly string _folder;
        private readonly List<string> _tokens;

        private HandMadeVocabulary(string folder, List<string> tokens) { _folder = folder; _tokens = tokens; }

        public string VocabPath => Path.Combine(_folder, "vocab.txt");
        public string MergesPath => Path.Combine(_folder, "merges.txt");

        public int Id(string token) => _tokens.IndexOf(token) is var id and >= 0 ? id : throw new ArgumentException(token);

        public static HandMadeVocabulary Write(string[] merges)
        {
            var folder = Directory.CreateTempSubdirectory("clip-vocab-").FullName;
            var bytes = Enumerable.Range(0, 256).Select(b => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF ? (char)b : '\0').ToList();
            var next = 256;
            var alphabet = bytes.Select(c => c != '\0' ? c : (char)next++).ToList();
            // Vocabulary order: the self-mapped byte characters first, then the remapped ones.
            var ordered = alphabet.Where(c => c < 256).Concat(alphabet.Where(c => c >= 256)).Select(c => c.ToString()).ToList();
            var tokens = ordered.Concat(ordered.Select(c => c + "</w>")).Concat(merges.Select(m => m.Replace(" ", ""))).ToList();
            tokens.Add("<|startoftext|>");
            tokens.Add("<|endoftext|>");
            File.WriteAllLines(Path.Combine(folder, "vocab.txt"), tokens);
            File.WriteAllLines(Path.Combine(folder, "merges.txt"), merges);
            return new HandMadeVocabulary(folder, tokens);
        }

        public void Dispose() => Directory.Delete(_folder, recursive: true);
    }
}
