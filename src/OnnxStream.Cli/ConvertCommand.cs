using System.CommandLine;
using OnnxStream.Conversion;

namespace OnnxStream.Cli;

/// <summary><c>onnxstream convert model.onnx OUT_DIR</c>: writes the original OnnxStream's model folder.</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "The .onnx file." };
        var output = new Argument<string>("out-dir") { Description = "The model folder to write (model.txt and .bin files)." };
        var fp16 = new Option<bool>("--fp16") { Description = "Store float32 weights as float16." };
        var uint8 = new Option<bool>("--uint8") { Description = "Quantize float32 weights to uint8 per tensor (0.1%/99.9% percentile range)." };
        var rangeData = new Option<string>("--range-data") { Description = "A range_data.txt (OPNAME,MIN,MAX lines) to copy into the folder for W8A8 runs." };
        var noFold = new Option<bool>("--no-fold") { Description = "Keep every node as the original converter does (no Identity removal, no constant folding)." };
        var rename = new Option<string[]>("--rename") { Description = "OLD=NEW: write the activation OLD (e.g. a graph input) as NEW.", AllowMultipleArgumentsPerToken = true };
        var allowOutside = AllowOutsideWeightsOption.Create();
        var command = new Command("convert", "Convert an ONNX model into an OnnxStream model folder, one weight at a time.")
            { model, output, fp16, uint8, rangeData, noFold, rename, allowOutside };
        command.SetAction((result, cancellationToken) =>
        {
            var options = new ModelConversionOptions
            {
                Float16 = result.GetValue(fp16),
                UInt8 = result.GetValue(uint8),
                RangeDataPath = result.GetValue(rangeData),
                Fold = !result.GetValue(noFold),
                AllowWeightsOutsideModelFolder = result.GetValue(allowOutside),
            };
            foreach (var pair in result.GetValue(rename) ?? [])
            {
                var equals = pair.IndexOf('=');
                if (equals <= 0 || equals == pair.Length - 1) throw new ArgumentException($"--rename '{pair}' is not OLD=NEW.");
                options.Renames[pair[..equals]] = pair[(equals + 1)..];
            }
            var lastPercent = -1;
            var progress = new SynchronousProgress(p =>
            {
                var percent = p.NodesWritten * 100 / p.NodeCount;
                if (percent / 10 == lastPercent / 10 && p.NodesWritten != p.NodeCount) return;
                lastPercent = percent;
                Console.WriteLine($"{percent,3}%  {p.NodesWritten}/{p.NodeCount} nodes, {p.WeightFilesWritten} weight files, {p.BytesWritten / 1048576.0:F1} MiB");
            });
            var converted = ModelFolderWriter.Convert(result.GetValue(model)!, result.GetValue(output)!, options, progress, cancellationToken);
            Console.WriteLine($"{converted.Folder}: {converted.NodeCount} nodes, {converted.WeightFileCount} weight files ({converted.BytesWritten / 1048576.0:F1} MiB); " +
                              $"peak native memory {converted.PeakNativeBytes / 1048576.0:F1} MiB (largest weight {converted.LargestWeightBytes / 1048576.0:F1} MiB)");
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>Reports on the converting thread (Progress&lt;T&gt; would post to the thread pool and print out of order).</summary>
    private sealed class SynchronousProgress(Action<ConversionProgress> report) : IProgress<ConversionProgress>
    {
        public void Report(ConversionProgress value) => report(value);
    }
}
