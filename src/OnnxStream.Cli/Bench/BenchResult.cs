using System.Text.Json;
using System.Text.Json.Serialization;

namespace OnnxStream.Cli.Bench;

/// <summary>What one child process measured for one configuration; it prints this as one JSON line.</summary>
internal sealed record BenchMeasurement
{
    /// <summary>The engine (onnxstream or ort).</summary>
    public required string Engine { get; init; }

    /// <summary>The engine's mode.</summary>
    public required string Mode { get; init; }

    /// <summary>Seconds to create the session (ONNX Runtime reads every weight here; this engine only the graph).</summary>
    public double LoadSeconds { get; init; }

    /// <summary>Wall seconds of each run, first run first.</summary>
    public required double[] RunSeconds { get; init; }

    /// <summary>Resident bytes just before the model was loaded: the .NET runtime, the native libraries and the inputs.</summary>
    public long? BaselineRssBytes { get; init; }

    /// <summary>The child's peak resident bytes (VmHWM) at the end.</summary>
    public long? PeakRssBytes { get; init; }

    /// <summary>This engine's peak of tracked native bytes over the runs (null for ONNX Runtime).</summary>
    public long? TrackedPeakBytes { get; init; }

    /// <summary>With --trace: milliseconds per run spent in each operator type (mean over the runs).</summary>
    public Dictionary<string, double>? OperatorMilliseconds { get; init; }

    /// <summary>Why the configuration has no figures (the child failed), or null.</summary>
    public string? Error { get; init; }

    /// <summary>
    /// One configuration's figures from several rounds: the round with the shortest steady time per run (other
    /// processes' load only adds time), with the highest peak RSS of all rounds; the first failure when every round failed.
    /// </summary>
    public static BenchMeasurement BestOf(IReadOnlyList<BenchMeasurement> rounds)
    {
        var succeeded = rounds.Where(m => m.Error is null).ToList();
        if (succeeded.Count == 0) return rounds[0];
        return succeeded.MinBy(m => m.SteadyRunSeconds)! with { PeakRssBytes = succeeded.Max(m => m.PeakRssBytes) };
    }

    /// <summary>The first run's seconds.</summary>
    [JsonIgnore]
    public double? FirstRunSeconds => RunSeconds.Length > 0 ? RunSeconds[0] : null;

    /// <summary>Seconds per run once warm: the mean of the runs after the first, or the first when there was one run.</summary>
    [JsonIgnore]
    public double? SteadyRunSeconds => RunSeconds.Length switch
    {
        0 => null,
        1 => RunSeconds[0],
        _ => RunSeconds.Skip(1).Average(),
    };
}

/// <summary>A configuration's figures as fractions of an ONNX Runtime configuration's (below 1: less than ONNX Runtime).</summary>
internal sealed record BenchRatios
{
    /// <summary>Peak RSS over ONNX Runtime's peak RSS.</summary>
    public double? PeakRss { get; init; }

    /// <summary>First run's time over ONNX Runtime's first run's.</summary>
    public double? FirstRun { get; init; }

    /// <summary>Steady time per run over ONNX Runtime's.</summary>
    public double? SteadyRun { get; init; }

    /// <summary>The ratios of <paramref name="measured"/> to <paramref name="reference"/>; null where either lacks the figure.</summary>
    public static BenchRatios Of(BenchMeasurement measured, BenchMeasurement reference) => new()
    {
        PeakRss = Divide(measured.PeakRssBytes, reference.PeakRssBytes),
        FirstRun = Divide(measured.FirstRunSeconds, reference.FirstRunSeconds),
        SteadyRun = Divide(measured.SteadyRunSeconds, reference.SteadyRunSeconds),
    };

    private static double? Divide(double? numerator, double? denominator) =>
        numerator is { } n && denominator is { } d && d > 0 ? n / d : null;
}

/// <summary>One configuration in a bench report: its measurement and its ratios to each ONNX Runtime mode measured.</summary>
internal sealed record BenchEntry(BenchMeasurement Measurement, Dictionary<string, BenchRatios> VersusOrt)
{
    /// <summary>"engine:mode".</summary>
    public string Label => $"{Measurement.Engine}:{Measurement.Mode}";
}

/// <summary>Where and how a bench ran.</summary>
internal sealed record BenchEnvironment
{
    /// <summary>The CPU model.</summary>
    public string? Cpu { get; init; }

    /// <summary>Logical processors.</summary>
    public int LogicalProcessors { get; init; }

    /// <summary>Physical memory in bytes.</summary>
    public long? MemoryBytes { get; init; }

    /// <summary>The operating system.</summary>
    public required string OperatingSystem { get; init; }

    /// <summary>The .NET runtime.</summary>
    public required string Runtime { get; init; }

    /// <summary>/proc/loadavg when the bench started and when it ended (other processes' load makes times noisy).</summary>
    public string? LoadAverageAtStart { get; set; }

    /// <inheritdoc cref="LoadAverageAtStart"/>
    public string? LoadAverageAtEnd { get; set; }

    /// <summary>This machine's description.</summary>
    public static BenchEnvironment Current() => new()
    {
        Cpu = ProcFirstValue("/proc/cpuinfo", "model name"),
        LogicalProcessors = Environment.ProcessorCount,
        MemoryBytes = ProcFirstValue("/proc/meminfo", "MemTotal") is { } total && long.TryParse(total.Split(' ')[0], out var kb) ? kb * 1024 : null,
        OperatingSystem = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        Runtime = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
        LoadAverageAtStart = LoadAverage(),
    };

    /// <summary>The first three fields of /proc/loadavg, or null.</summary>
    public static string? LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : null;

    private static string? ProcFirstValue(string file, string key)
    {
        if (!File.Exists(file)) return null;
        foreach (var line in File.ReadLines(file))
        {
            var colon = line.IndexOf(':');
            if (colon > 0 && line[..colon].Trim() == key) return line[(colon + 1)..].Trim();
        }
        return null;
    }
}

/// <summary>A bench's results: what ran where, each configuration's figures and ratios.</summary>
internal sealed record BenchReport
{
    /// <summary>The model ONNX Runtime ran.</summary>
    public required string Model { get; init; }

    /// <summary>The model this engine ran (a converted folder, or the same .onnx).</summary>
    public required string OnnxStreamModel { get; init; }

    /// <summary>Threads each engine was given.</summary>
    public int Threads { get; init; }

    /// <summary>Runs per configuration.</summary>
    public int Runs { get; init; }

    /// <summary>Rounds per configuration (see <see cref="BenchMeasurement.BestOf"/>).</summary>
    public int Rounds { get; init; } = 1;

    /// <summary>Every round's measurement, in the order they ran, when there was more than one round.</summary>
    public IReadOnlyList<BenchMeasurement>? AllRounds { get; init; }

    /// <summary>The machine.</summary>
    public required BenchEnvironment Environment { get; init; }

    /// <summary>The configurations, in the order they ran.</summary>
    public required IReadOnlyList<BenchEntry> Entries { get; init; }

    /// <summary>The report of <paramref name="measurements"/>, each with its ratios to each ONNX Runtime mode that has figures.</summary>
    public static IReadOnlyList<BenchEntry> Compare(IReadOnlyList<BenchMeasurement> measurements)
    {
        var references = measurements.Where(m => m.Engine == BenchMode.NameOf(BenchEngine.Ort) && m.Error is null).ToList();
        return measurements.Select(m => new BenchEntry(m, m.Error is null
            ? references.ToDictionary(r => r.Mode, r => BenchRatios.Of(m, r))
            : [])).ToList();
    }
}

/// <summary>The JSON form of bench results (camelCase, indented for reports, one line for a child's measurement).</summary>
internal static class BenchJson
{
    /// <summary>The prefix of the line a child prints its measurement on.</summary>
    public const string ResultLinePrefix = "BENCH-RESULT ";

    private static readonly BenchJsonContext Indented = new(new JsonSerializerOptions(BenchJsonContext.Default.Options) { WriteIndented = true });

    /// <summary>The child's result line.</summary>
    public static string ToResultLine(BenchMeasurement measurement) =>
        ResultLinePrefix + JsonSerializer.Serialize(measurement, BenchJsonContext.Default.BenchMeasurement);

    /// <summary>The measurement in a child's output: its last line starting with <see cref="ResultLinePrefix"/>, or null when it printed none.</summary>
    /// <exception cref="FormatException">The result line is not a measurement.</exception>
    public static BenchMeasurement? ParseResultLine(IEnumerable<string> outputLines)
    {
        var line = outputLines.LastOrDefault(l => l.StartsWith(ResultLinePrefix, StringComparison.Ordinal));
        if (line is null) return null;
        try
        {
            return JsonSerializer.Deserialize(line[ResultLinePrefix.Length..], BenchJsonContext.Default.BenchMeasurement)
                   ?? throw new FormatException("The bench result line is 'null'.");
        }
        catch (JsonException e)
        {
            throw new FormatException($"The bench result line is not a measurement: {e.Message}", e);
        }
    }

    /// <summary>The report as indented JSON.</summary>
    public static string Serialize(BenchReport report) => JsonSerializer.Serialize(report, Indented.BenchReport);

    /// <summary>Reads a report written by <see cref="Serialize"/>.</summary>
    public static BenchReport Deserialize(string json) =>
        JsonSerializer.Deserialize(json, BenchJsonContext.Default.BenchReport) ?? throw new FormatException("The bench report is 'null'.");

    /// <summary>Reads the report that <c>bench --json</c> wrote to <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not such a report; the message names the file and where the JSON went wrong.</exception>
    public static BenchReport ReadReport(string path)
    {
        var json = File.ReadAllText(path);
        try
        {
            return Deserialize(json);
        }
        catch (JsonException e)
        {
            var where = e.LineNumber is { } line ? $" line {line + 1}, byte {e.BytePositionInLine + 1}" : "";
            throw new InvalidDataException($"{path}{where}: not a bench --json report ({e.Message})", e);
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"{path}: not a bench --json report ({e.Message})", e);
        }
    }
}

/// <summary>The bench types' JSON (de)serializers, generated at compile time: no reflection, so that Native AOT keeps them working.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BenchMeasurement))]
[JsonSerializable(typeof(BenchReport))]
internal sealed partial class BenchJsonContext : JsonSerializerContext;
