using System.CommandLine;
using OnnxStream.Cli;

var root = new RootCommand("onnxstream: run large ONNX models in a small, predictable amount of RAM.");
root.Subcommands.Add(VersionCommand.Create());
root.Subcommands.Add(BenchKernelsCommand.Create());
return root.Parse(args).Invoke();
