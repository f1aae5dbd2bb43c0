using System.Diagnostics;
using System.Security.Cryptography;
using OnnxStream.Memory;

namespace OnnxStream.Fuzz;

/// <summary>What an input did that a reader must not do.</summary>
/// <param name="Target">The fuzz target.</param>
/// <param name="Kind">"exception", "hang", "allocation" or "leak".</param>
/// <param name="Message">The exception (type, message, where), or the time or bytes that went past the limit.</param>
/// <param name="Input">The input.</param>
public sealed record FuzzFinding(string Target, string Kind, string Message, byte[] Input)
{
    /// <summary>What makes two findings the same bug: the kind and, for an exception, its type and its first frame.</summary>
    public string Signature { get; init; } = Kind;

    /// <inheritdoc />
    public override string ToString() => $"{Target} {Kind}: {Message}\n  input ({Input.Length} bytes, base64): {Convert.ToBase64String(Input)}";
}

/// <summary>The limits one input runs under, and how many inputs a run makes.</summary>
public sealed class FuzzOptions
{
    /// <summary>Mutated inputs to run (the seeds run first, besides).</summary>
    public int Inputs { get; set; } = 2000;

    /// <summary>The mutator's seed.</summary>
    public int Seed { get; set; } = 13;

    /// <summary>An input still running after this long is a hang (the first includes JIT compilation).</summary>
    public TimeSpan TimeLimit { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Managed bytes (allocated by the reader's thread) and native bytes (held at once) one input may take.</summary>
    public long AllocationLimitBytes { get; set; } = 256L << 20;

    /// <summary>../shared, whose small fixtures join the seeds when present; null: the generated seeds only.</summary>
    public string? SharedRoot { get; set; }

    /// <summary>Where each distinct finding's input is written (TARGET-KIND-HASH.bin); null: nowhere.</summary>
    public string? FindingsDirectory { get; set; }
}

/// <summary>The outcome of a run of one target.</summary>
/// <param name="Target">The target.</param>
/// <param name="Inputs">Inputs run, seeds included.</param>
/// <param name="Parsed">Inputs that parsed.</param>
/// <param name="Refused">Inputs refused with a user error, by exception type.</param>
/// <param name="Findings">Distinct findings (one per <see cref="FuzzFinding.Signature"/>), the first input of each.</param>
/// <param name="Elapsed">Wall time.</param>
/// <param name="MaxAllocatedBytes">The most managed bytes one input allocated.</param>
/// <param name="MaxNativeBytes">The most native bytes one input held at once.</param>
public sealed record FuzzReport(string Target, int Inputs, int Parsed, IReadOnlyDictionary<string, int> Refused, IReadOnlyList<FuzzFinding> Findings,
    TimeSpan Elapsed, long MaxAllocatedBytes, long MaxNativeBytes)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Target}: {Inputs} inputs in {Elapsed.TotalSeconds:F1} s, {Parsed} parsed, {Refused.Values.Sum()} refused " +
        $"({string.Join(", ", Refused.OrderByDescending(r => r.Value).Select(r => $"{r.Key} {r.Value}"))}), " +
        $"at most {MaxAllocatedBytes / 1024} KiB managed and {MaxNativeBytes / 1024} KiB native per input, {Findings.Count} findings";
}

/// <summary>Runs a target's seeds and then mutated inputs, each under the time and allocation limits.</summary>
public static class FuzzRunner
{
    private const int MaxCorpus = 256;

    /// <summary>Runs <paramref name="target"/> in a temporary working folder, deleted afterwards.</summary>
    public static FuzzReport Run(string target, FuzzOptions options)
    {
        var workDir = Directory.CreateTempSubdirectory($"fuzz-{target}-").FullName;
        try
        {
            return Run(target, options, workDir);
        }
        finally
        {
            try { Directory.Delete(workDir, recursive: true); } catch (IOException) { } // a hung input may still hold a file
        }
    }

    private static FuzzReport Run(string target, FuzzOptions options, string workDir)
    {
        var clock = Stopwatch.StartNew();
        var seeds = FuzzSeeds.Prepare(target, workDir, options.SharedRoot);
        var corpus = new List<byte[]>(seeds);
        var mutator = new Mutator(options.Seed, text: target is not "onnx");
        var pick = new Random(options.Seed + 1);
        var refused = new Dictionary<string, int>();
        var findings = new Dictionary<string, FuzzFinding>();
        int inputs = 0, parsed = 0;
        long maxManaged = 0, maxNative = 0;
        for (var i = 0; i < seeds.Count + options.Inputs; i++)
        {
            var input = i < seeds.Count ? seeds[i] : mutator.Next(corpus);
            inputs++;
            var outcome = Check(target, input, workDir, options);
            maxManaged = Math.Max(maxManaged, outcome.ManagedBytes);
            maxNative = Math.Max(maxNative, outcome.NativeBytes);
            if (outcome.Finding is { } finding)
            {
                if (findings.TryAdd(finding.Signature, finding) && options.FindingsDirectory is { } dir)
                {
                    Directory.CreateDirectory(dir);
                    File.WriteAllBytes(Path.Combine(dir, $"{target}-{finding.Kind}-{Convert.ToHexString(SHA256.HashData(input))[..12]}.bin"), input);
                }
                if (finding.Kind == "hang") break; // the input still runs: nothing after it would be measured right
            }
            else if (outcome.Refusal is { } refusal)
                refused[refusal.GetType().Name] = refused.GetValueOrDefault(refusal.GetType().Name) + 1;
            else
            {
                parsed++;
                if (i >= seeds.Count) // a mutant that parses is a new starting point
                {
                    if (corpus.Count < MaxCorpus) corpus.Add(input);
                    else corpus[seeds.Count + pick.Next(MaxCorpus - seeds.Count)] = input;
                }
            }
        }
        return new FuzzReport(target, inputs, parsed, refused, [.. findings.Values], clock.Elapsed, maxManaged, maxNative);
    }

    /// <summary>The outcome of one input.</summary>
    /// <param name="Finding">What it did wrong, or null.</param>
    /// <param name="Refusal">The user error it was refused with, or null when it parsed (or is a finding).</param>
    /// <param name="ManagedBytes">Managed bytes the reader allocated.</param>
    /// <param name="NativeBytes">The most native bytes held at once.</param>
    public sealed record Outcome(FuzzFinding? Finding, Exception? Refusal, long ManagedBytes, long NativeBytes);

    /// <summary>Runs one input of <paramref name="target"/> (in <paramref name="workDir"/>, prepared by <see cref="FuzzSeeds.Prepare"/>).</summary>
    public static Outcome Check(string target, byte[] input, string workDir, FuzzOptions options)
    {
        var allocator = new NativeAllocator();
        long managed = 0, native = 0;
        Exception? refusal = null, error = null;
        var run = Task.Run(() =>
        {
            NativeAllocator.Shared.TakeIntervalPeak();
            var sharedBefore = NativeAllocator.Shared.CurrentBytes;
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                refusal = FuzzTargets.Run(target, input, workDir, allocator);
            }
            catch (Exception e)
            {
                error = e;
            }
            managed = GC.GetAllocatedBytesForCurrentThread() - before;
            native = Math.Max(allocator.PeakBytes, NativeAllocator.Shared.TakeIntervalPeak() - sharedBefore);
        });
        if (!run.Wait(options.TimeLimit))
            return new Outcome(new FuzzFinding(target, "hang", $"still running after {options.TimeLimit.TotalSeconds:F0} s", input), null, 0, 0);
        FuzzFinding? finding = null;
        if (error is not null)
            finding = new FuzzFinding(target, "exception", error.ToString(), input) { Signature = $"{error.GetType().FullName} at {FirstFrame(error)}" };
        else if (managed > options.AllocationLimitBytes || native > options.AllocationLimitBytes)
            finding = new FuzzFinding(target, "allocation", $"{managed} managed bytes allocated, {native} native bytes held at once (limit {options.AllocationLimitBytes})", input);
        else if (allocator.CurrentBytes != 0)
            finding = new FuzzFinding(target, "leak", $"{allocator.CurrentBytes} native bytes still held after the reader returned", input);
        return new Outcome(finding, finding is null ? refusal : null, managed, native);
    }

    /// <summary>The innermost frame in the project's code (else the innermost frame): where the bad value got through.</summary>
    private static string FirstFrame(Exception e)
    {
        var methods = new StackTrace(e, fNeedFileInfo: false).GetFrames().Select(f => f.GetMethod()).OfType<System.Reflection.MethodBase>().ToList();
        var method = methods.FirstOrDefault(m => m.DeclaringType?.FullName?.StartsWith("OnnxStream.", StringComparison.Ordinal) == true) ?? methods.FirstOrDefault();
        return method is null ? "?" : $"{method.DeclaringType?.FullName}.{method.Name}";
    }
}
