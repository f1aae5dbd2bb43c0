using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Runtime;
using OnnxStream.StableDiffusion.Tokenization;
using OnnxStream.Tensors;

namespace OnnxStream.Fuzz;

/// <summary>
/// The fuzz targets: each writes the input where the real reader expects a file and reads it as a user's file is read.
/// An input passes when it parses or the reader throws one of <see cref="IsUserError"/>'s types; anything else is a
/// finding.
/// </summary>
public static class FuzzTargets
{
    /// <summary>The names of the targets, as <see cref="Run"/> and the command line take them.</summary>
    public static IReadOnlyList<string> Names { get; } = ["modeltxt", "onnx", "npy", "tokenizer", "rangedata"];

    /// <summary>
    /// The prompt the tokenizer target tokenizes after loading a vocabulary: words BPE merges, weights and a
    /// parenthesized emphasis, non-ASCII text.
    /// </summary>
    private const string Prompt = "a (low:1.2) lower lolol photo, [newer] wide\u00e9 \u732b!";

    /// <summary>
    /// Runs target <paramref name="target"/> on <paramref name="input"/> in <paramref name="workDir"/> (which holds what
    /// <see cref="FuzzSeeds.Prepare"/> wrote there). Returns normally whether the input parsed or was refused as a user
    /// error; any other exception propagates.
    /// </summary>
    /// <param name="target">One of <see cref="Names"/>.</param>
    /// <param name="input">The file's bytes.</param>
    /// <param name="workDir">The target's working folder.</param>
    /// <param name="allocator">Tracks the native bytes the input makes the reader allocate.</param>
    /// <returns>null when the input parsed, else the user error it was refused with.</returns>
    public static Exception? Run(string target, byte[] input, string workDir, NativeAllocator allocator)
    {
        try
        {
            switch (target)
            {
                case "modeltxt":
                    File.WriteAllBytes(Path.Combine(workDir, "model.txt"), input);
                    ModelLoader.Load(workDir);
                    break;
                case "onnx":
                    var onnx = Path.Combine(workDir, "model.onnx");
                    File.WriteAllBytes(onnx, input);
                    ModelLoader.Load(onnx);
                    break;
                case "npy":
                    var npy = Path.Combine(workDir, "input.npy");
                    File.WriteAllBytes(npy, input);
                    NpyFile.Read(npy, allocator).Dispose();
                    break;
                case "tokenizer":
                    RunTokenizer(input, workDir);
                    break;
                case "rangedata":
                    var ranges = Path.Combine(workDir, "range_data.txt");
                    File.WriteAllBytes(ranges, input);
                    RangeData.Load(ranges).Write(TextWriter.Null);
                    break;
                default:
                    throw new ArgumentException($"Unknown fuzz target '{target}' (one of {string.Join(", ", Names)}).", nameof(target));
            }
            return null;
        }
        catch (Exception e) when (IsUserError(e))
        {
            return e;
        }
    }

    /// <summary>
    /// The tokenizer target's input is a vocabulary file and a merges file, separated by the first NUL byte (no NUL:
    /// all vocabulary, no merges); the vocabulary is vocab.json when it starts with '{', else vocab.txt.
    /// </summary>
    private static void RunTokenizer(byte[] input, string workDir)
    {
        var split = Array.IndexOf(input, (byte)0);
        var vocab = split < 0 ? input : input[..split];
        var merges = split < 0 ? [] : input[(split + 1)..];
        var vocabPath = Path.Combine(workDir, vocab.Length > 0 && vocab[0] == '{' ? "vocab.json" : "vocab.txt");
        var mergesPath = Path.Combine(workDir, "merges.txt");
        File.WriteAllBytes(vocabPath, vocab);
        File.WriteAllBytes(mergesPath, merges);
        var tokenizer = ClipTokenizer.FromFiles(vocabPath, mergesPath);
        tokenizer.Tokenize(Prompt);
        tokenizer.TokenizeWeighted(Prompt);
    }

    /// <summary>
    /// What a reader may throw for a bad file: the errors the CLI reports as a user's mistake (its catch in
    /// Program.cs) and InvalidDataException (the tokenizer's). ArgumentNullException and ArgumentOutOfRangeException
    /// are not: from a reader they mean an unchecked value reached an API that rejected it.
    /// </summary>
    public static bool IsUserError(Exception e) =>
        e is ModelFormatException or FormatException or InvalidDataException or IOException or UnauthorizedAccessException
            or OperatorException or NativeKernelException
        || e is ArgumentException and not (ArgumentNullException or ArgumentOutOfRangeException);

}
