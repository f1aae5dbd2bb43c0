using System.CommandLine;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Cli;

/// <summary>
/// <c>onnxstream calibrate</c>: runs a model in float32 over input sets and writes the range_data.txt of
/// static activation quantization (<see cref="Calibrator"/>).
/// </summary>
internal static class CalibrateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A model.txt, a model folder or an .onnx file.", Required = true };
        var inputs = new Option<string>("--inputs")
        {
            Description = "A folder with one subfolder of NAME.npy files per input set (or NAME.npy files directly: one set).",
            Required = true,
        };
        var output = new Option<string>("--out") { Description = "The range_data.txt to write.", Required = true };
        var threads = new Option<int>("--threads") { Description = "Threads for the kernels.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var allowOutside = AllowOutsideWeightsOption.Create();
        var command = new Command("calibrate", "Calibrate static (W8A8) quantization: write a range_data.txt.") { model, inputs, output, threads, allowOutside };
        command.SetAction((result, cancellationToken) =>
        {
            if (result.GetValue(threads) < 1) throw new ArgumentException("--threads must be at least 1.");
            IO.AtomicFile.EnsureWritable(result.GetValue(output)!);
            var sets = InputSets(result.GetValue(inputs)!);
            var options = new InferenceSessionOptions { Threads = result.GetValue(threads), AllowWeightsOutsideModelFolder = result.GetValue(allowOutside) };
            var progress = new ConsoleProgress(done => Console.Error.WriteLine($"input set {done} of {sets.Count} done"));
            var ranges = Calibrator.Calibrate(result.GetValue(model)!, ReadSets(sets), options, progress, cancellationToken);
            var path = result.GetValue(output)!;
            ranges.Save(path);
            Console.WriteLine($"{ranges.Count} ranges from {sets.Count} input set(s) -> {path}");
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>The input sets' folders: each subfolder holding .npy files, or the folder itself when it holds them.</summary>
    private static List<string> InputSets(string folder)
    {
        if (!Directory.Exists(folder)) throw new ArgumentException($"--inputs: {folder} is not a folder.");
        if (Directory.EnumerateFiles(folder, "*.npy").Any()) return [folder];
        var sets = Directory.EnumerateDirectories(folder).Where(d => Directory.EnumerateFiles(d, "*.npy").Any()).Order(StringComparer.Ordinal).ToList();
        return sets.Count > 0 ? sets : throw new ArgumentException($"--inputs: {folder} holds no .npy files and no subfolders with .npy files.");
    }

    /// <summary>Reads one set at a time (NAME.npy → input NAME), freeing each after its run.</summary>
    private static IEnumerable<IReadOnlyDictionary<string, Tensor>> ReadSets(List<string> sets)
    {
        foreach (var set in sets)
        {
            var tensors = new Dictionary<string, Tensor>();
            try
            {
                foreach (var file in Directory.EnumerateFiles(set, "*.npy").Order(StringComparer.Ordinal))
                    tensors[Path.GetFileNameWithoutExtension(file)] = NpyFile.Read(file);
                yield return tensors;
            }
            finally
            {
                foreach (var tensor in tensors.Values) tensor.Dispose();
            }
        }
    }

    /// <summary>Reports at once, on the calibrating thread (Progress&lt;T&gt; would post them to the thread pool, out of order with the output).</summary>
    private sealed class ConsoleProgress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
