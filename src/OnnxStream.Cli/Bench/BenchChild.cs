using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Cli.Bench;

/// <summary>
/// <c>onnxstream bench-child</c> (hidden): measures one configuration in a process of its own, so that its peak
/// RSS is its own. Progress goes to stderr; the measurement is the last stdout line (<see cref="BenchJson.ResultLinePrefix"/>).
/// </summary>
internal static class BenchChild
{
    /// <summary>The verb <see cref="BenchCommand"/> starts children with.</summary>
    public const string Verb = "bench-child";

    public static Command Create()
    {
        var engine = new Option<string>("--engine") { Required = true };
        engine.AcceptOnlyFromAmong("onnxstream", "ort");
        var mode = new Option<string>("--mode") { Required = true };
        var model = new Option<string>("--model") { Required = true };
        var inputs = new Option<string[]>("--input") { AllowMultipleArgumentsPerToken = true };
        var runs = new Option<int>("--runs") { DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount };
        var trace = new Option<bool>("--trace");
        var allowOutside = AllowOutsideWeightsOption.Create();
        var command = new Command(Verb, "Measure one configuration (started by bench).") { engine, mode, model, inputs, runs, threads, trace, allowOutside };
        command.Hidden = true;
        command.SetAction(result =>
        {
            var benchMode = BenchMode.Parse(BenchMode.ParseEngine(result.GetValue(engine)!), result.GetValue(mode)!);
            var files = (result.GetValue(inputs) ?? []).Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
            var measurement = benchMode.Engine == BenchEngine.Ort
                ? MeasureOrt(benchMode, result.GetValue(model)!, files, result.GetValue(runs), result.GetValue(threads), result.GetValue(trace))
                : MeasureOnnxStream(benchMode, result.GetValue(model)!, files, result.GetValue(runs), result.GetValue(threads), result.GetValue(trace), result.GetValue(allowOutside));
            Console.WriteLine(BenchJson.ToResultLine(measurement));
            return 0;
        });
        return command;
    }

    private static BenchMeasurement MeasureOnnxStream(BenchMode mode, string model, Dictionary<string, string> files, int runs, int threads, bool trace, bool allowOutside)
    {
        var inputAllocator = new NativeAllocator();
        var tensors = files.ToDictionary(f => f.Key, f => NpyFile.Read(f.Value, inputAllocator));
        try
        {
            _ = Kernels.NativeRuntime.SupportsFloat16; // loads the native libraries before the baseline
            var options = mode.ToSessionOptions(threads);
            options.Trace = trace;
            var baseline = ProcessMemory.CurrentRssBytes();
            var load = Stopwatch.StartNew();
            using var session = new Runtime.InferenceSession(Graph.ModelLoader.Load(model, new Graph.ModelLoadOptions { AllowWeightsOutsideModelFolder = allowOutside }), options);
            var loadSeconds = load.Elapsed.TotalSeconds;
            if (session.Precision != options.Precision)
                Console.Error.WriteLine($"notice: no float16 kernels on this CPU: {mode.Name} runs as {session.Precision}.");
            var seconds = new double[runs];
            long trackedPeak = 0;
            var operatorMilliseconds = trace ? new Dictionary<string, double>() : null;
            for (var i = 0; i < runs; i++)
            {
                var clock = Stopwatch.StartNew();
                using (var run = session.Run(tensors))
                {
                    seconds[i] = clock.Elapsed.TotalSeconds;
                    trackedPeak = Math.Max(trackedPeak, run.PeakBytes);
                    foreach (var op in run.Trace ?? [])
                        operatorMilliseconds![op.OpType] = operatorMilliseconds.GetValueOrDefault(op.OpType) + op.Milliseconds / runs;
                }
                ReportRun(i, runs, seconds[i]);
            }
            return new BenchMeasurement
            {
                Engine = mode.EngineName, Mode = mode.Name, LoadSeconds = loadSeconds, RunSeconds = seconds,
                BaselineRssBytes = baseline, PeakRssBytes = ProcessMemory.PeakRssBytes(), TrackedPeakBytes = trackedPeak,
                OperatorMilliseconds = operatorMilliseconds,
            };
        }
        finally
        {
            foreach (var tensor in tensors.Values) tensor.Dispose();
        }
    }

    private static BenchMeasurement MeasureOrt(BenchMode mode, string model, Dictionary<string, string> files, int runs, int threads, bool trace)
    {
        var values = new List<OrtValue>();
        try
        {
            foreach (var file in files.Values)
            {
                using var tensor = NpyFile.Read(file, new NativeAllocator());
                var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, OrtElementType(tensor.ElementType), [.. tensor.Shape.Select(d => (long)d)]);
                values.Add(value);
                tensor.Bytes.CopyTo(value.GetTensorMutableRawData());
            }
            using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };
            if (mode.Name == "lean")
            {
                options.EnableCpuMemArena = false;
                options.EnableMemoryPattern = false;
                options.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
            }
            var profileFolder = trace ? Directory.CreateTempSubdirectory("onnxstream-bench-ort") : null;
            if (profileFolder is not null)
            {
                // The prefix first: setting EnableProfiling passes the prefix to ONNX Runtime.
                options.ProfileOutputPathPrefix = Path.Combine(profileFolder.FullName, "profile");
                options.EnableProfiling = true;
            }
            var baseline = ProcessMemory.CurrentRssBytes();
            var load = Stopwatch.StartNew();
            using var session = new InferenceSession(model, options);
            var loadSeconds = load.Elapsed.TotalSeconds;
            var inputNames = files.Keys.ToArray();
            var outputNames = session.OutputNames.ToArray();
            using var runOptions = new RunOptions();
            var seconds = new double[runs];
            for (var i = 0; i < runs; i++)
            {
                var clock = Stopwatch.StartNew();
                using (session.Run(runOptions, inputNames, values, outputNames))
                    seconds[i] = clock.Elapsed.TotalSeconds;
                ReportRun(i, runs, seconds[i]);
            }
            var peak = ProcessMemory.PeakRssBytes();
            Dictionary<string, double>? operatorMilliseconds = null;
            if (profileFolder is not null)
            {
                operatorMilliseconds = OrtProfile.OperatorMilliseconds(File.ReadAllText(session.EndProfiling()), runs);
                profileFolder.Delete(recursive: true);
            }
            return new BenchMeasurement
            {
                Engine = mode.EngineName, Mode = mode.Name, LoadSeconds = loadSeconds, RunSeconds = seconds,
                BaselineRssBytes = baseline, PeakRssBytes = peak, OperatorMilliseconds = operatorMilliseconds,
            };
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }

    private static void ReportRun(int index, int runs, double seconds) =>
        Console.Error.WriteLine($"run {index + 1}/{runs}: {seconds:F3} s, peak RSS so far {ProcessMemory.PeakRssBytes() / 1048576.0:F0} MiB");

    private static TensorElementType OrtElementType(ElementType type) => type switch
    {
        ElementType.Float32 => TensorElementType.Float,
        ElementType.Float16 => TensorElementType.Float16,
        ElementType.Int64 => TensorElementType.Int64,
        ElementType.Int32 => TensorElementType.Int32,
        ElementType.UInt8 => TensorElementType.UInt8,
        _ => TensorElementType.Bool,
    };
}

/// <summary>Reads ONNX Runtime's profile (a Chrome trace: one "Node" event per kernel run).</summary>
internal static class OrtProfile
{
    /// <summary>Milliseconds per run spent in each operator type: the <c>*_kernel_time</c> node events' durations (µs), summed and divided by <paramref name="runs"/>.</summary>
    public static Dictionary<string, double> OperatorMilliseconds(string profileJson, int runs)
    {
        var totals = new Dictionary<string, double>();
        using var document = JsonDocument.Parse(profileJson);
        foreach (var e in document.RootElement.EnumerateArray())
        {
            if (!e.TryGetProperty("cat", out var category) || category.GetString() != "Node") continue;
            if (!e.TryGetProperty("name", out var name) || name.GetString()?.EndsWith("_kernel_time", StringComparison.Ordinal) != true) continue;
            if (!e.TryGetProperty("args", out var args) || !args.TryGetProperty("op_name", out var op) || op.GetString() is not { } opType) continue;
            totals[opType] = totals.GetValueOrDefault(opType) + e.GetProperty("dur").GetDouble() / 1000 / runs;
        }
        return totals;
    }
}
