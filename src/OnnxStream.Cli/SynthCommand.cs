using System.CommandLine;
using System.Diagnostics;
using OnnxStream.IO;
using OnnxStream.ModelBuilder;

namespace OnnxStream.Cli;

/// <summary><c>onnxstream synth</c>: writes a Stable Diffusion component with seeded random weights as an .onnx file.</summary>
internal static class SynthCommand
{
    public static Command Create()
    {
        var arch = new Option<string>("--arch") { Description = $"The component: {string.Join(", ", StableDiffusionModels.ComponentNames)}.", Required = true };
        arch.AcceptOnlyFromAmong([.. StableDiffusionModels.ComponentNames]);
        var scale = new Option<string>("--scale") { Description = "full (the published architecture) or tiny (for tests).", DefaultValueFactory = _ => "full" };
        scale.AcceptOnlyFromAmong("full", "tiny");
        var output = new Option<string>("--out") { Description = "The folder to write model.onnx (and model.onnx_data past 2 GiB) to (required unless --count-only)." };
        var seed = new Option<long>("--seed") { Description = "The seed of the weights.", DefaultValueFactory = _ => 0 };
        var fp16 = new Option<bool>("--fp16-weights") { Description = "A float16 model: weights, activations, and float inputs and outputs (as fp16 exports are)." };
        var latent = new Option<int?>("--latent-size") { Description = "The latent side the UNet and VAE inputs are declared with (default 64 for SD 1.5, 128 for SDXL, 32 tiny)." };
        var external = new Option<bool>("--external-data") { Description = "Write the weights to model.onnx_data even under 2 GiB." };
        var countOnly = new Option<bool>("--count-only") { Description = "Print the graph's size and parameter count without writing anything." };
        var command = new Command("synth", "Write a Stable Diffusion component (UNet, VAE decoder, CLIP text encoder) with seeded random weights as ONNX.")
            { arch, scale, output, seed, fp16, latent, external, countOnly };
        command.SetAction((result, cancellationToken) =>
        {
            var component = StableDiffusionModels.ParseComponent(result.GetValue(arch)!);
            var folder = result.GetValue(output);
            if (folder is null && !result.GetValue(countOnly)) throw new ArgumentException("--out is required (or --count-only).");
            if (!result.GetValue(countOnly)) AtomicFile.EnsureWritable(Path.Combine(Directory.CreateDirectory(folder!).FullName, "model.onnx"));
            var size = result.GetValue(latent);
            if (size is <= 0 or > 4096) throw new ArgumentException($"--latent-size {size} is not between 1 and 4096.");
            var graph = StableDiffusionModels.Build(component, result.GetValue(scale) == "tiny" ? ModelScale.Tiny : ModelScale.Full,
                result.GetValue(fp16) ? OnnxElementType.Float16 : OnnxElementType.Float, size);
            Console.WriteLine($"{StableDiffusionModels.NameOf(component)}: {graph.NodeCount} nodes, {graph.ParameterCount:N0} parameters in {graph.ParameterTensorCount} tensors ({graph.ParameterBytes / 1048576.0:F1} MiB)");
            foreach (var input in graph.Inputs) Console.WriteLine($"input:  {input}");
            foreach (var value in graph.Outputs) Console.WriteLine($"output: {value}");
            if (result.GetValue(countOnly)) return Task.FromResult(0);

            var stopwatch = Stopwatch.StartNew();
            var progress = new ConsoleProgress();
            var written = OnnxModelWriter.Write(graph, Path.Combine(folder!, "model.onnx"),
                new OnnxWriteOptions { Seed = result.GetValue(seed), ExternalData = result.GetValue(external) ? ExternalDataPolicy.Always : ExternalDataPolicy.Auto }, progress,
                cancellationToken);
            progress.Finish();
            Console.WriteLine($"wrote {written.ModelPath}{(written.ExternalDataPath is { } data ? $" and {data}" : "")}: {written.TotalBytes / 1048576.0:F1} MiB in {stopwatch.Elapsed.TotalSeconds:F1} s");
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>One percentage line, rewritten in place on a terminal, printed every 10% when redirected.</summary>
    private sealed class ConsoleProgress : IProgress<double>
    {
        private int _shown = -1;

        public void Report(double value)
        {
            var percent = (int)(value * 100);
            if (percent == _shown || (Console.IsOutputRedirected && percent % 10 != 0)) return;
            _shown = percent;
            if (Console.IsOutputRedirected) Console.WriteLine($"writing weights: {percent}%");
            else Console.Write($"\rwriting weights: {percent,3}%");
        }

        public void Finish()
        {
            if (!Console.IsOutputRedirected) Console.WriteLine();
        }
    }
}
