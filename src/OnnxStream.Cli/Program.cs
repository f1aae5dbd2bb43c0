using System.CommandLine;
using OnnxStream;
using OnnxStream.Cli;
using OnnxStream.Cli.Bench;
using OnnxStream.Graph;
using OnnxStream.Operators;
using OnnxStream.Runtime;

var root = new RootCommand("onnxstream: run large ONNX models in a small, predictable amount of RAM.");
root.Subcommands.Add(VersionCommand.Create());
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(CalibrateCommand.Create());
root.Subcommands.Add(InfoCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(BenchKernelsCommand.Create());
root.Subcommands.Add(BenchAttentionCommand.Create());
root.Subcommands.Add(SynthCommand.Create());
root.Subcommands.Add(SdCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(BenchChild.Create());
root.Subcommands.Add(BenchCommand.CreateReport());
try
{
    return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is ArgumentException or ModelFormatException or OperatorException or IOException or UnauthorizedAccessException
                              or FormatException or NativeKernelException or OperationCanceledException or NonFiniteValueException)
{
    // Bad input is the user's to fix: say what and where, without a stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
