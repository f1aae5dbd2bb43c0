using System.CommandLine;
using OnnxStream.Graph;

namespace OnnxStream.Cli;

/// <summary><c>onnxstream info PATH</c>: what a model holds and what running it will need.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "A model.txt or a model folder." };
        var allowOutside = AllowOutsideWeightsOption.Create();
        var command = new Command("info", "Print a model's operators, parameters, inputs and outputs, and the peak memory of its schedule.") { path, allowOutside };
        command.SetAction(result =>
        {
            var graph = ModelLoader.Load(result.GetValue(path)!, new ModelLoadOptions { AllowWeightsOutsideModelFolder = result.GetValue(allowOutside) });
            var summary = ModelSummary.Of(graph);
            Console.WriteLine($"model: {graph.Source}");
            Console.WriteLine($"nodes: {graph.Nodes.Count}");
            foreach (var (opType, count) in summary.OperatorCounts) Console.WriteLine($"  {opType,-24} {count,6}");
            Console.WriteLine($"parameters: {summary.ParameterCount:N0} ({summary.ParameterBytes / 1048576.0:F1} MiB as stored)");
            foreach (var input in graph.Inputs) Console.WriteLine($"input:  {input.Name} [{string.Join(',', input.Shape)}]");
            foreach (var output in graph.Outputs) Console.WriteLine($"output: {output.Name} [{string.Join(',', output.Shape)}]");
            var bound = summary.UnknownShapes > 0 ? $" at least ({summary.UnknownShapes} activations have shapes known only at run time)" : "";
            Console.WriteLine($"peak schedule memory:{bound} {summary.PeakScheduleBytes / 1048576.0:F1} MiB at node '{summary.PeakNode}'");
            return 0;
        });
        return command;
    }
}
