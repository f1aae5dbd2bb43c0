using System.CommandLine;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace OnnxStream.Cli.Bench;

/// <summary>
/// <c>onnxstream bench</c>: runs a model with this engine's modes and ONNX Runtime's, each configuration in
/// a child process of its own on the same seeded inputs, and reports time per run, peak RSS and the ratios
/// to ONNX Runtime as a table, JSON and a PNG chart.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The .onnx model (ONNX Runtime runs it; this engine too unless --onnxstream-model).", Required = true };
        var onnxStreamModel = new Option<string>("--onnxstream-model") { Description = "The model this engine runs instead (e.g. the folder 'onnxstream convert --fp16' made from --model)." };
        var engine = new Option<string>("--engine") { Description = "onnxstream, ort or both.", DefaultValueFactory = _ => "both" };
        engine.AcceptOnlyFromAmong("onnxstream", "ort", "both");
        var modes = new Option<string[]>("--mode")
        {
            Description = "A configuration, repeatable: onnxstream PROVIDER[/PRECISION][/ATTENTION] (prefetch|nocache|ram|mmap, fp32|fp16-storage|fp16, plain|sliced|fused) " +
                          "or ort default|lean, optionally prefixed ENGINE:. Engines with none named run their defaults.",
            AllowMultipleArgumentsPerToken = true,
        };
        var runs = new Option<int>("--runs") { Description = "Runs per configuration (the first is reported apart).", DefaultValueFactory = _ => 3 };
        var threads = new Option<int>("--threads") { Description = "Threads for each engine.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var json = new Option<string>("--json") { Description = "Write the results as JSON to this file." };
        var chart = new Option<string>("--chart") { Description = "Draw peak RSS and time per configuration to this PNG (default: the --json path with .png)." };
        var markdown = new Option<string>("--markdown") { Description = "Write the table (Markdown) to this file." };
        var title = new Option<string>("--title") { Description = "The chart's title (default: the model's file name)." };
        var inputs = new Option<string[]>("--input") { Description = "NAME=FILE.npy for an input (others get seeded random values from their declared shape).", AllowMultipleArgumentsPerToken = true };
        var rounds = new Option<int>("--rounds")
        {
            Description = "Measure the configurations this many times in turn (A B C A B C) and report each one's fastest round, " +
                          "with the highest peak RSS of its rounds (on a shared machine, other processes' load only adds time).",
            DefaultValueFactory = _ => 1,
        };
        var seed = new Option<int>("--seed") { Description = "Seed of the random inputs.", DefaultValueFactory = _ => 0 };
        var trace = new Option<bool>("--trace") { Description = "Also report the time per operator type (this engine's trace, ONNX Runtime's profiler)." };
        var allowOutside = AllowOutsideWeightsOption.Create();
        var command = new Command("bench", "Compare this engine with ONNX Runtime on a model: time per run, peak RSS, ratios.")
            { model, onnxStreamModel, engine, modes, runs, rounds, threads, json, chart, markdown, title, inputs, seed, trace, allowOutside };
        command.SetAction((result, cancellationToken) =>
        {
            var settings = new BenchSettings
            {
                Model = result.GetValue(model)!,
                OnnxStreamModel = result.GetValue(onnxStreamModel),
                Engines = result.GetValue(engine) switch { "ort" => [BenchEngine.Ort], "onnxstream" => [BenchEngine.OnnxStream], _ => [BenchEngine.OnnxStream, BenchEngine.Ort] },
                Modes = result.GetValue(modes) ?? [],
                Runs = result.GetValue(runs),
                Rounds = result.GetValue(rounds),
                Threads = result.GetValue(threads),
                Inputs = ParsePairs(result.GetValue(inputs)),
                Seed = result.GetValue(seed),
                Trace = result.GetValue(trace),
                AllowOutsideWeights = result.GetValue(allowOutside),
            };
            foreach (var path in new[] { result.GetValue(json), result.GetValue(markdown), result.GetValue(chart) })
                if (path is not null) IO.AtomicFile.EnsureWritable(path);
            var report = Run(settings, Console.Out, cancellationToken);
            Console.WriteLine();
            var jsonPath = result.GetValue(json);
            if (jsonPath is not null)
            {
                IO.AtomicFile.WriteAllText(jsonPath, BenchJson.Serialize(report));
                Console.WriteLine($"wrote {jsonPath}");
            }
            Publish(report, result.GetValue(markdown), result.GetValue(chart) ?? (jsonPath is null ? null : Path.ChangeExtension(jsonPath, ".png")), result.GetValue(title));
            return Task.FromResult(report.Entries.Any(e => e.Measurement.Error is not null) ? 1 : 0);
        });
        return command;
    }

    /// <summary><c>onnxstream bench-report</c>: the table and chart of a report that <c>bench --json</c> wrote.</summary>
    public static Command CreateReport()
    {
        var json = new Option<string>("--json") { Description = "A report written by bench --json.", Required = true };
        var chart = new Option<string>("--chart") { Description = "Draw the chart to this PNG." };
        var markdown = new Option<string>("--markdown") { Description = "Write the table (Markdown) to this file." };
        var title = new Option<string>("--title") { Description = "The chart's title (default: the model's file name)." };
        var command = new Command("bench-report", "Print the table of a bench --json report again, and draw its chart.") { json, chart, markdown, title };
        command.SetAction(result =>
        {
            var report = BenchJson.ReadReport(result.GetValue(json)!);
            Publish(report, result.GetValue(markdown), result.GetValue(chart), result.GetValue(title));
            return 0;
        });
        return command;
    }

    private static void Publish(BenchReport report, string? markdownPath, string? chartPath, string? title)
    {
        var table = BenchTable.Format(report);
        Console.Write(table);
        if (markdownPath is not null)
        {
            IO.AtomicFile.WriteAllText(markdownPath, table);
            Console.WriteLine($"wrote {markdownPath}");
        }
        if (chartPath is not null)
        {
            BenchChart.Draw(report, chartPath, title);
            Console.WriteLine($"wrote {chartPath}");
        }
    }

    /// <summary>Measures every configuration of <paramref name="settings"/>, one child process each, writing progress to <paramref name="progress"/>.</summary>
    public static BenchReport Run(BenchSettings settings, TextWriter progress, CancellationToken cancellationToken = default)
    {
        if (settings.Runs < 1) throw new ArgumentException("--runs must be at least 1.");
        if (settings.Threads < 1) throw new ArgumentException("--threads must be at least 1.");
        if (settings.Rounds < 1) throw new ArgumentException("--rounds must be at least 1.");
        var configurations = BenchMode.Select(settings.Engines, settings.Modes);
        var environment = BenchEnvironment.Current();
        var folder = Directory.CreateTempSubdirectory("onnxstream-bench");
        try
        {
            var inputs = BenchInputs.Write(Graph.ModelLoader.Load(settings.Model, new Graph.ModelLoadOptions { AllowWeightsOutsideModelFolder = settings.AllowOutsideWeights }), folder.FullName, settings.Seed, settings.Inputs);
            // Round-robin (A B C A B C): each configuration meets the same mix of other processes' load.
            var rounds = configurations.Select(_ => new List<BenchMeasurement>()).ToList();
            var inOrder = new List<BenchMeasurement>();
            for (var round = 0; round < settings.Rounds; round++)
                for (var i = 0; i < configurations.Count; i++)
                {
                    var mode = configurations[i];
                    var roundText = settings.Rounds > 1 ? $" round {round + 1}/{settings.Rounds}," : "";
                    progress.WriteLine($"[{i + 1}/{configurations.Count}] {mode.Label}:{roundText} {settings.Runs} run(s), {settings.Threads} thread(s)");
                    var model = mode.Engine == BenchEngine.OnnxStream ? settings.OnnxStreamModel ?? settings.Model : settings.Model;
                    var measurement = RunChild(mode, model, inputs, settings, progress, cancellationToken);
                    progress.WriteLine(measurement.Error is { } error
                        ? $"    failed: {error}"
                        : $"    first run {measurement.FirstRunSeconds:F2} s, then {measurement.SteadyRunSeconds:F2} s/run; peak RSS {measurement.PeakRssBytes / 1048576.0:F0} MiB");
                    rounds[i].Add(measurement);
                    inOrder.Add(measurement);
                }
            environment.LoadAverageAtEnd = BenchEnvironment.LoadAverage();
            return new BenchReport
            {
                Model = Path.GetFullPath(settings.Model),
                OnnxStreamModel = Path.GetFullPath(settings.OnnxStreamModel ?? settings.Model),
                Threads = settings.Threads, Runs = settings.Runs, Rounds = settings.Rounds, Environment = environment,
                Entries = BenchReport.Compare(rounds.Select(BenchMeasurement.BestOf).ToList()),
                AllRounds = settings.Rounds > 1 ? inOrder : null,
            };
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static BenchMeasurement RunChild(BenchMode mode, string model, IReadOnlyDictionary<string, string> inputs, BenchSettings settings,
        TextWriter progress, CancellationToken cancellationToken)
    {
        var (fileName, prefix) = SelfInvocation();
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in prefix.Concat([BenchChild.Verb, "--engine", mode.EngineName, "--mode", mode.Name, "--model", model,
                     "--runs", settings.Runs.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--threads", settings.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            start.ArgumentList.Add(argument);
        foreach (var (name, file) in inputs)
        {
            start.ArgumentList.Add("--input");
            start.ArgumentList.Add($"{name}={file}");
        }
        if (settings.Trace) start.ArgumentList.Add("--trace");
        if (settings.AllowOutsideWeights) start.ArgumentList.Add("--allow-outside-weights");

        using var child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var output = new List<string>();
        var lastError = "";
        child.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.Add(e.Data); };
        child.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (progress) progress.WriteLine($"    {e.Data}");
            if (e.Data.Length > 0) lastError = e.Data;
        };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        try
        {
            child.WaitForExitAsync(cancellationToken).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            child.Kill(entireProcessTree: true);
            throw;
        }
        child.WaitForExit(); // drains the redirected streams
        var measurement = child.ExitCode == 0 ? BenchJson.ParseResultLine(output) : null;
        return measurement ?? new BenchMeasurement
        {
            Engine = mode.EngineName, Mode = mode.Name, RunSeconds = [],
            Error = $"exit code {child.ExitCode}{(lastError.Length > 0 ? $": {lastError}" : "")}",
        };
    }

    /// <summary>How to start this program again: its executable, or <c>dotnet</c> with this assembly when it runs as <c>dotnet OnnxStream.Cli.dll</c>.</summary>
    private static (string FileName, string[] Prefix) SelfInvocation()
    {
        var process = Environment.ProcessPath ?? "dotnet";
        // Native AOT (no dynamic code): the executable is the whole program, whatever its name.
        if (!RuntimeFeature.IsDynamicCodeSupported) return (process, []);
        // Not GetFileNameWithoutExtension: the app host "OnnxStream.Cli" has no extension to strip.
        var name = Path.GetFileName(process);
        if (name.EndsWith(".exe", StringComparison.OrdinalIgnoreCase)) name = name[..^4];
        var assemblyName = typeof(BenchCommand).Assembly.GetName().Name!;
        if (name == assemblyName || name == "onnxstream") return (process, []);
        // Not Assembly.Location, which is empty in a single-file app: beside the app's other files.
        var assembly = Path.Combine(AppContext.BaseDirectory, assemblyName + ".dll");
        return (name.Equals("dotnet", StringComparison.OrdinalIgnoreCase) ? process : "dotnet", [assembly]);
    }

    private static Dictionary<string, string> ParsePairs(string[]? pairs)
    {
        var parsed = new Dictionary<string, string>();
        foreach (var pair in pairs ?? [])
        {
            var equals = pair.IndexOf('=');
            if (equals <= 0 || equals == pair.Length - 1) throw new ArgumentException($"--input '{pair}' is not NAME=FILE.npy.");
            parsed[pair[..equals]] = Path.GetFullPath(pair[(equals + 1)..]);
        }
        return parsed;
    }
}

/// <summary>What a bench measures and how.</summary>
internal sealed record BenchSettings
{
    /// <summary>The .onnx model.</summary>
    public required string Model { get; init; }

    /// <summary>The model this engine runs instead of <see cref="Model"/>, or null.</summary>
    public string? OnnxStreamModel { get; init; }

    /// <summary>The engines to measure.</summary>
    public required IReadOnlyCollection<BenchEngine> Engines { get; init; }

    /// <summary>The named modes (see <see cref="BenchMode.Select"/>).</summary>
    public IReadOnlyList<string> Modes { get; init; } = [];

    /// <summary>Runs per configuration.</summary>
    public int Runs { get; init; } = 3;

    /// <summary>Times each configuration is measured, in turn with the others (see <see cref="BenchMeasurement.BestOf"/>).</summary>
    public int Rounds { get; init; } = 1;

    /// <summary>Threads per engine.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Inputs given as .npy files (NAME → path).</summary>
    public IReadOnlyDictionary<string, string> Inputs { get; init; } = new Dictionary<string, string>();

    /// <summary>Seed of the random inputs.</summary>
    public int Seed { get; init; }

    /// <summary>Whether to record time per operator type.</summary>
    public bool Trace { get; init; }

    /// <summary>Let this engine's model read files outside its folder (<c>--allow-outside-weights</c>).</summary>
    public bool AllowOutsideWeights { get; init; }
}
