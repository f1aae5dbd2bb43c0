using System.CommandLine;
using System.Reflection;
using System.Runtime.InteropServices;
using OnnxStream.Kernels;

namespace OnnxStream.Cli;

/// <summary><c>onnxstream version</c>: what is running and what this machine supports.</summary>
internal static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("version", "Print the versions of OnnxStream and its native XNNPACK, and what this processor supports.");
        command.SetAction(_ =>
        {
            var version = typeof(NativeRuntime).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
            Console.WriteLine($"onnxstream {version}");
            Console.WriteLine($"XNNPACK commit: {NativeRuntime.XnnpackCommit}");
            Console.WriteLine($"platform: {RuntimeInformation.RuntimeIdentifier}, {Environment.ProcessorCount} processors");
            Console.WriteLine($"f16 kernels: {(NativeRuntime.SupportsFloat16 ? "yes" : "no (f16 falls back to f32)")}");
            return 0;
        });
        return command;
    }
}
