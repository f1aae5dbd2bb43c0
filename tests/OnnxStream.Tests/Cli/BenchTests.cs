using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using OnnxStream.Cli.Bench;
using OnnxStream.ModelBuilder;
using OnnxStream.Runtime;

namespace OnnxStream.Tests.Cli;

public class BenchTests
{
    [Test]
    public void OnnxStreamModesAreNormalizedAndMapToSessionOptions()
    {
        var mode = BenchMode.Parse(BenchEngine.OnnxStream, "fused/ram/fp16");
        Assert.That(mode.Name, Is.EqualTo("ram/fp16/fused"));
        Assert.That(BenchMode.Parse(BenchEngine.OnnxStream, "mmap").Name, Is.EqualTo("mmap/fp32/plain"));
        var options = mode.ToSessionOptions(threads: 3);
        Assert.Multiple(() =>
        {
            Assert.That(options.WeightsProvider, Is.EqualTo(WeightsProviderKind.Ram));
            Assert.That(options.Precision, Is.EqualTo(Precision.Float16Arithmetic));
            Assert.That(options.Attention, Is.EqualTo(AttentionMode.Fused));
            Assert.That(options.Threads, Is.EqualTo(3));
            Assert.That(options.ActivationQuantization, Is.EqualTo(ActivationQuantization.None));
        });
        var quantized = BenchMode.Parse(BenchEngine.OnnxStream, "u8-static/nocache");
        Assert.That(quantized.Name, Is.EqualTo("nocache/fp32/plain/u8-static"));
        Assert.That(quantized.ToSessionOptions(1).ActivationQuantization, Is.EqualTo(ActivationQuantization.Static));
        Assert.That(BenchMode.Parse(BenchEngine.OnnxStream, "u8-dynamic").ToSessionOptions(1).ActivationQuantization, Is.EqualTo(ActivationQuantization.Dynamic));
    }

    [TestCase("onnxstream", "default")]
    [TestCase("onnxstream", "ram/nocache")]
    [TestCase("onnxstream", "prefetch/fp64")]
    [TestCase("ort", "prefetch")]
    public void ModesOfAnotherEngineOrUnknownAreRefused(string engine, string text) =>
        Assert.That(() => BenchMode.Parse(BenchMode.ParseEngine(engine), text), Throws.ArgumentException.With.Message.Contains($"'{text}'"));

    [Test]
    public void NamedModesGoToTheirEngineAndOtherEnginesRunTheirDefaults()
    {
        var both = new[] { BenchEngine.OnnxStream, BenchEngine.Ort };
        var selected = BenchMode.Select(both, ["ram/fused", "ram/fp32/fused", "lean"]).Select(m => m.Label);
        Assert.That(selected, Is.EqualTo(new[] { "onnxstream:ram/fp32/fused", "ort:lean" }));
        Assert.That(BenchMode.Select(both, ["prefetch/fused"]).Select(m => m.Label),
            Is.EqualTo(new[] { "onnxstream:prefetch/fp32/fused", "ort:default", "ort:lean" }));
        Assert.That(() => BenchMode.Select([BenchEngine.Ort], ["ram"]), Throws.ArgumentException.With.Message.Contains("--mode 'ram'"));
    }

    [Test]
    public void PeakAndCurrentRssAreReadFromProcStatusLines()
    {
        const string status = "Name:\tdotnet\nVmPeak:\t 3000000 kB\nVmHWM:\t   123456 kB\nVmRSS:\t  100000 kB\nThreads:\t12\n";
        Assert.Multiple(() =>
        {
            Assert.That(ProcessMemory.ParseStatusField(status, "VmHWM"), Is.EqualTo(123456L * 1024));
            Assert.That(ProcessMemory.ParseStatusField(status, "VmRSS"), Is.EqualTo(100000L * 1024));
            Assert.That(ProcessMemory.ParseStatusField(status, "VmSwap"), Is.Null);
            Assert.That(() => ProcessMemory.ParseStatusField("VmHWM:\t12 MB\n", "VmHWM"), Throws.TypeOf<FormatException>());
        });
        if (!OperatingSystem.IsLinux()) return;
        var current = ProcessMemory.CurrentRssBytes()!.Value; // before the peak: the RSS may grow in between
        Assert.That(ProcessMemory.PeakRssBytes(), Is.GreaterThanOrEqualTo(current).And.GreaterThan(1 << 20));
    }

    [Test]
    public void TheLastResultLineOfAChildIsItsMeasurement()
    {
        var measurement = new BenchMeasurement
        {
            Engine = "onnxstream", Mode = "ram/fp32/fused", LoadSeconds = 0.5, RunSeconds = [3, 1, 2],
            PeakRssBytes = 100 << 20, TrackedPeakBytes = 40 << 20, OperatorMilliseconds = new() { ["Conv"] = 12.5 },
        };
        var parsed = BenchJson.ParseResultLine(["run 1/3: 3 s", BenchJson.ToResultLine(measurement with { Mode = "old" }), BenchJson.ToResultLine(measurement)]);
        Assert.That(parsed, Is.Not.Null);
        Assert.Multiple(() =>
        {
            Assert.That(parsed!.Mode, Is.EqualTo("ram/fp32/fused"));
            Assert.That(parsed.RunSeconds, Is.EqualTo(new double[] { 3, 1, 2 }));
            Assert.That(parsed.FirstRunSeconds, Is.EqualTo(3));
            Assert.That(parsed.SteadyRunSeconds, Is.EqualTo(1.5));
            Assert.That(parsed.TrackedPeakBytes, Is.EqualTo(40 << 20));
            Assert.That(parsed.BaselineRssBytes, Is.Null);
            Assert.That(parsed.OperatorMilliseconds!["Conv"], Is.EqualTo(12.5));
        });
        Assert.That(BenchJson.ParseResultLine(["no result here"]), Is.Null);
        Assert.That(() => BenchJson.ParseResultLine([BenchJson.ResultLinePrefix + "{not json"]), Throws.TypeOf<FormatException>());
    }

    /// <summary>The compile-time serializers (for Native AOT) write what the reflection-based ones wrote before them.</summary>
    [Test]
    public void JsonIsWhatTheReflectionSerializerWrote()
    {
        var measurement = new BenchMeasurement
            { Engine = "ort", Mode = "default", RunSeconds = [2, 1], PeakRssBytes = 100, OperatorMilliseconds = new() { ["Conv"] = 1.5 } };
        var report = new BenchReport
        {
            Model = "m.onnx", OnnxStreamModel = "m", Threads = 2, Runs = 2, Entries = BenchReport.Compare([measurement]),
            Environment = new BenchEnvironment { OperatingSystem = "Linux", Runtime = ".NET", LogicalProcessors = 2 },
        };
        var reflection = new JsonSerializerOptions(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
        Assert.Multiple(() =>
        {
            Assert.That(BenchJson.ToResultLine(measurement), Is.EqualTo(BenchJson.ResultLinePrefix + JsonSerializer.Serialize(measurement, reflection)));
            Assert.That(BenchJson.Serialize(report), Is.EqualTo(JsonSerializer.Serialize(report, new JsonSerializerOptions(reflection) { WriteIndented = true })));
            Assert.That(BenchJson.Serialize(report), Does.Contain("\n  \"onnxStreamModel\": \"m\"").And.Not.Contain("error"));
        });
    }

    [Test]
    public void RatiosAreToEachOrtModeAndSkipWhatIsMissing()
    {
        var ours = new BenchMeasurement { Engine = "onnxstream", Mode = "prefetch/fp32/fused", RunSeconds = [12, 10], PeakRssBytes = 100 };
        var ortDefault = new BenchMeasurement { Engine = "ort", Mode = "default", RunSeconds = [8, 5], PeakRssBytes = 4000 };
        var ortLean = new BenchMeasurement { Engine = "ort", Mode = "lean", RunSeconds = [4], PeakRssBytes = null };
        var failed = new BenchMeasurement { Engine = "ort", Mode = "lean", RunSeconds = [], Error = "exit code 137" };
        var entries = BenchReport.Compare([ours, ortDefault, ortLean, failed]);
        var versusDefault = entries[0].VersusOrt["default"];
        Assert.Multiple(() =>
        {
            Assert.That(versusDefault.PeakRss, Is.EqualTo(1 / 40.0));
            Assert.That(versusDefault.FirstRun, Is.EqualTo(1.5));
            Assert.That(versusDefault.SteadyRun, Is.EqualTo(2.0));
            Assert.That(entries[0].VersusOrt["lean"].PeakRss, Is.Null);
            Assert.That(entries[0].VersusOrt["lean"].SteadyRun, Is.EqualTo(2.5)); // a single run is its own steady time
            Assert.That(entries[1].VersusOrt["default"].SteadyRun, Is.EqualTo(1.0));
            Assert.That(entries[3].VersusOrt, Is.Empty);
            Assert.That(BenchTable.Ratio(versusDefault.PeakRss), Is.EqualTo("1/40"));
            Assert.That(BenchTable.Ratio(versusDefault.SteadyRun), Is.EqualTo("2.00x"));
            Assert.That(BenchTable.Ratio(null), Is.EqualTo("-"));
        });
    }

    [Test]
    public void SeveralRoundsKeepTheFastestRoundAndTheHighestPeakRss()
    {
        BenchMeasurement Round(double[] seconds, long rss, string? error = null) =>
            new() { Engine = "ort", Mode = "default", RunSeconds = seconds, PeakRssBytes = rss, Error = error };
        var best = BenchMeasurement.BestOf([Round([9, 8], 500), Round([12, 6], 300), Round([], 0, "exit code 137")]);
        Assert.Multiple(() =>
        {
            Assert.That(best.RunSeconds, Is.EqualTo(new double[] { 12, 6 }));
            Assert.That(best.PeakRssBytes, Is.EqualTo(500));
            Assert.That(BenchMeasurement.BestOf([Round([], 0, "first"), Round([], 0, "second")]).Error, Is.EqualTo("first"));
        });
    }

    [Test]
    public void OrtProfileKernelTimesAreSummedPerOperatorTypeAndRun()
    {
        const string profile = """
            [{"cat":"Session","name":"model_loading_uri","dur":5000,"args":{}},
             {"cat":"Node","name":"conv1_kernel_time","dur":3000,"args":{"op_name":"Conv"}},
             {"cat":"Node","name":"conv1_fence_before","dur":7,"args":{"op_name":"Conv"}},
             {"cat":"Node","name":"conv2_kernel_time","dur":1000,"args":{"op_name":"Conv"}},
             {"cat":"Node","name":"add_kernel_time","dur":500,"args":{"op_name":"Add"}}]
            """;
        var milliseconds = OrtProfile.OperatorMilliseconds(profile, runs: 2);
        Assert.That(milliseconds, Is.EquivalentTo(new Dictionary<string, double> { ["Conv"] = 2.0, ["Add"] = 0.25 }));
    }

    /// <summary>The whole command on a small convolution model: both engines in child processes, JSON, table and chart.</summary>
    [Test]
    public void BenchBothEnginesWritesAReportWithRatiosAndAChart()
    {
        var folder = Directory.CreateTempSubdirectory("bench-test");
        try
        {
            var graph = new OnnxGraphBuilder("bench");
            var x = graph.Input("x", OnnxElementType.Float, 1, 8, 16, 16);
            var ids = graph.Input("ids", OnnxElementType.Int64, 1, 4);
            var conv = graph.Node("Conv", [x, graph.Parameter("w", [8, 8, 3, 3], WeightInit.FanIn(72)), graph.Parameter("b", [8], WeightInit.Uniform(0.1f))],
                OnnxAttribute.Ints("pads", 1, 1, 1, 1));
            graph.Output(graph.Node("Sigmoid", [conv]), "y", OnnxElementType.Float, 1, 8, 16, 16);
            graph.Output(graph.Node("Cast", [ids], OnnxAttribute.Int("to", 1)), "z", OnnxElementType.Float, 1, 4);
            var model = OnnxModelWriter.Write(graph, Path.Combine(folder.FullName, "model.onnx")).ModelPath;
            var json = Path.Combine(folder.FullName, "report.json");

            var (exitCode, output) = RunCli("bench", "--model", model, "--engine", "both", "--runs", "1", "--rounds", "2", "--threads", "1",
                "--mode", "ram/fused", "--mode", "ort:default", "--mode", "ort:lean", "--json", json);

            Assert.That(exitCode, Is.Zero, output);
            var report = BenchJson.Deserialize(File.ReadAllText(json));
            Assert.That(report.Entries.Select(e => e.Label), Is.EqualTo(new[] { "onnxstream:ram/fp32/fused", "ort:default", "ort:lean" }));
            Assert.That(report.AllRounds!.Select(m => m.Mode), Is.EqualTo(new[] { "ram/fp32/fused", "default", "lean", "ram/fp32/fused", "default", "lean" }));
            foreach (var entry in report.Entries)
            {
                var m = entry.Measurement;
                Assert.That(m.Error, Is.Null, entry.Label);
                Assert.That(m.RunSeconds, Has.Length.EqualTo(1), entry.Label);
                Assert.That(m.PeakRssBytes, Is.GreaterThanOrEqualTo(m.BaselineRssBytes!.Value).And.GreaterThan(1 << 20), entry.Label);
                Assert.That(entry.VersusOrt.Keys, Is.EquivalentTo(new[] { "default", "lean" }), entry.Label);
            }
            Assert.That(report.Entries[0].Measurement.TrackedPeakBytes, Is.GreaterThanOrEqualTo(2 * 8 * 16 * 16 * 4)); // input and output at least
            Assert.That(report.Entries[1].VersusOrt["default"].PeakRss, Is.EqualTo(1.0));
            Assert.That(output, Does.Contain("| onnxstream:ram/fp32/fused").And.Contain("RSS / ort:default"));
            Assert.That(new FileInfo(Path.ChangeExtension(json, ".png")).Length, Is.GreaterThan(1000));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    /// <summary>Runs the CLI built next to this project (src/OnnxStream.Cli/bin/CONFIGURATION/TFM) with dotnet.</summary>
    private static (int ExitCode, string Output) RunCli(params string[] arguments)
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = testOutput.Name;
        var configuration = testOutput.Parent!.Name;
        var repository = testOutput.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        var cli = Path.Combine(repository, "src", "OnnxStream.Cli", "bin", configuration, framework, "OnnxStream.Cli.dll");
        Assert.That(File.Exists(cli), $"{cli} is missing: build the solution.");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(cli);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + error.Result);
    }
}
