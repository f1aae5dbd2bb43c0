using System.CommandLine;
using OnnxStream.IO;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Cli;

/// <summary><c>onnxstream run</c>: runs a model on .npy inputs and writes its outputs as .npy files.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A model.txt or a model folder.", Required = true };
        var inputs = new Option<string[]>("--input") { Description = "NAME=FILE.npy, once per model input.", AllowMultipleArgumentsPerToken = true };
        var outputDir = new Option<string>("--output-dir") { Description = "Where to write each output as NAME.npy.", Required = true };
        var provider = new Option<string>("--provider") { Description = "How weights are read: prefetch, nocache, ram or mmap.", DefaultValueFactory = _ => "prefetch" };
        provider.AcceptOnlyFromAmong("prefetch", "nocache", "ram", "mmap");
        var threads = new Option<int>("--threads") { Description = "Threads for the kernels.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var extra = new Option<string[]>("--extra-output") { Description = "An intermediate tensor to write too.", AllowMultipleArgumentsPerToken = true };
        var trace = new Option<bool>("--trace") { Description = "Print each operation's time and the bytes held after it." };
        var precision = new Option<string>("--precision")
        {
            Description = "fp32; fp16-storage (float16 activations, float32 arithmetic); fp16 (float16 activations and kernels where the CPU has them).",
            DefaultValueFactory = _ => "fp32",
        };
        precision.AcceptOnlyFromAmong("fp32", "fp16-storage", "fp16");
        var attention = new Option<string>("--attention") { Description = "How attention runs: plain, sliced (query rows in blocks) or fused (memory-efficient).", DefaultValueFactory = _ => "plain" };
        attention.AcceptOnlyFromAmong("plain", "sliced", "fused");
        var slices = new Option<int>("--attention-slices") { Description = "Blocks of query rows of sliced attention.", DefaultValueFactory = _ => 2 };
        var quantize = new Option<string>("--quantize")
        {
            Description = "Activations stored as uint8: none; dynamic (each over its own percentile range); static (W8A8 over calibrated ranges, uint8 kernels).",
            DefaultValueFactory = _ => "none",
        };
        quantize.AcceptOnlyFromAmong("none", "dynamic", "static");
        var rangeData = new Option<string>("--range-data") { Description = "The range_data.txt of --quantize static (default: the model folder's)." };
        var quantizeTensors = new Option<string[]>("--quantize-tensors")
        {
            Description = "Quantize only these operation outputs (node or tensor names, comma-separated or repeated).",
            AllowMultipleArgumentsPerToken = true,
        };
        var allowOutside = AllowOutsideWeightsOption.Create();
        var checkFinite = new Option<bool>("--check-finite") { Description = "Stop at the first NaN or infinity an operation produces, naming the operation." };
        var lenient = new Option<bool>("--lenient") { Description = "A model.txt shape that differs from the computed one is a warning (the computed one is used), not an error." };
        var command = new Command("run", "Run a model on .npy inputs.")
        {
            model, inputs, outputDir, provider, threads, extra, trace, precision, attention, slices, quantize, rangeData, quantizeTensors, checkFinite, lenient, allowOutside,
        };
        command.SetAction((result, cancellationToken) =>
        {
            var options = new InferenceSessionOptions
            {
                Threads = result.GetValue(threads),
                WeightsProvider = result.GetValue(provider) switch { "nocache" => WeightsProviderKind.NoCache, "ram" => WeightsProviderKind.Ram, "mmap" => WeightsProviderKind.MemoryMapped, _ => WeightsProviderKind.Prefetch },
                Trace = result.GetValue(trace),
                Precision = result.GetValue(precision) switch { "fp16" => Precision.Float16Arithmetic, "fp16-storage" => Precision.Float16Storage, _ => Precision.Float32 },
                Attention = result.GetValue(attention) switch { "sliced" => AttentionMode.Sliced, "fused" => AttentionMode.Fused, _ => AttentionMode.Plain },
                AttentionSlices = result.GetValue(slices),
                ActivationQuantization = result.GetValue(quantize) switch { "dynamic" => ActivationQuantization.Dynamic, "static" => ActivationQuantization.Static, _ => ActivationQuantization.None },
                RangeDataPath = result.GetValue(rangeData),
                CheckFinite = result.GetValue(checkFinite),
                QuantizedTensors = result.GetValue(quantizeTensors) is { Length: > 0 } names
                    ? names.SelectMany(n => n.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToHashSet()
                    : null,
                AllowWeightsOutsideModelFolder = result.GetValue(allowOutside),
            };
            // With --trace, the resident set after each operation (read from /proc; none elsewhere).
            var residentBytes = new List<long>();
            if (options.Trace && Bench.ProcessMemory.CurrentRssBytes() is not null)
                options.OperationCompleted = _ => residentBytes.Add(Bench.ProcessMemory.CurrentRssBytes() ?? 0);
            if (options.Threads < 1) throw new ArgumentException("--threads must be at least 1.");
            if (options.AttentionSlices < 1) throw new ArgumentException("--attention-slices must be at least 1.");
            // The output folder is checked (created, and writable) before the work, not after it.
            var outputFolder = result.GetValue(outputDir)!;
            if (File.Exists(outputFolder)) throw new IOException($"--output-dir {outputFolder} is a file, not a folder.");
            var directory = Directory.CreateDirectory(outputFolder);
            AtomicFile.EnsureWritable(Path.Combine(directory.FullName, "output.npy"));
            var loadOptions = new Graph.ModelLoadOptions
            {
                AllowWeightsOutsideModelFolder = options.AllowWeightsOutsideModelFolder,
                Lenient = result.GetValue(lenient),
                Warning = message => Console.Error.WriteLine($"warning: {message}"),
            };
            using var session = new InferenceSession(Graph.ModelLoader.Load(result.GetValue(model)!, loadOptions), options);
            if (session.Precision != options.Precision)
                Console.Error.WriteLine("notice: this CPU has no float16 kernels (XNNPACK needs AVX2 or ARMv8.2 FP16): running fp16-storage instead.");
            var tensors = new Dictionary<string, Tensor>();
            try
            {
                foreach (var pair in result.GetValue(inputs) ?? [])
                {
                    var equals = pair.IndexOf('=');
                    if (equals <= 0) throw new ArgumentException($"--input '{pair}' is not NAME=FILE.npy.");
                    tensors[pair[..equals]] = NpyFile.Read(pair[(equals + 1)..], session.Allocator);
                }
                using var run = session.Run(tensors, result.GetValue(extra), cancellationToken);
                foreach (var (name, tensor) in run.Outputs)
                {
                    var file = Path.Combine(directory.FullName, name.Replace('/', '_') + ".npy");
                    NpyFile.Write(file, tensor);
                    Console.WriteLine($"{name}: {tensor} -> {file}");
                }
                if (run.Trace is { } traced)
                {
                    Console.WriteLine($"{"operation",-14} {"ms",12} {"held MiB",9} {"peak MiB",9} {"RSS MiB",8}  node");
                    for (var i = 0; i < traced.Count; i++)
                    {
                        var op = traced[i];
                        var rss = i < residentBytes.Count ? $"{residentBytes[i] / 1048576.0,8:F1}" : $"{"",8}";
                        Console.WriteLine($"{op.OpType,-14} {op.Milliseconds,9:F2} ms {op.LiveBytes / 1048576.0,9:F1} {op.PeakBytes / 1048576.0,9:F1} {rss}  {op.Node}");
                    }
                }
                var peakResident = Bench.ProcessMemory.PeakRssBytes() is { } hwm ? $", peak RSS {hwm / 1048576.0:F1} MiB" : "";
                Console.WriteLine($"time {run.Elapsed.TotalSeconds:F3} s, peak tracked {run.PeakBytes / 1048576.0:F1} MiB ({run.PeakBytes} bytes){peakResident}");
                return Task.FromResult(0);
            }
            finally
            {
                foreach (var tensor in tensors.Values) tensor.Dispose();
            }
        });
        return command;
    }
}
