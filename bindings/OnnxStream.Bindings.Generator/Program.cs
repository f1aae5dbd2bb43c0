using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using OnnxStream.Bindings.Generator;

if (args.Length is < 2 or > 3 || (args.Length == 3 && args[2] != "--check"))
{
    Console.Error.WriteLine("usage: OnnxStream.Bindings.Generator <header.h> <output.cs> [--check]");
    return 2;
}

// clang names the header in its locations exactly as it was given, so hand it the normalized full path and compare against that.
string header = Path.GetFullPath(args[0]);
string output = args[1];
bool check = args.Length == 3;

try
{
    // Deep expression trees in system headers would exceed the default depth limit of 64.
    using JsonDocument ast = JsonDocument.Parse(RunClang(header), new JsonDocumentOptions { MaxDepth = 100_000 });
    byte[] generated = Encoding.UTF8.GetBytes(Generator.Generate(ast.RootElement, header, File.ReadAllBytes(header)));
    bool upToDate = File.Exists(output) && File.ReadAllBytes(output).AsSpan().SequenceEqual(generated);
    if (check)
    {
        if (upToDate)
            return 0;
        Console.Error.WriteLine($"{output} is stale: run ./build.sh bindings");
        return 1;
    }
    // Leave an unchanged file alone so its timestamp does not trigger rebuilds.
    if (!upToDate)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllBytes(output, generated);
    }
    return 0;
}
catch (GeneratorException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

static string RunClang(string header)
{
    var start = new ProcessStartInfo("clang") { RedirectStandardOutput = true, RedirectStandardError = true };
    // -fparse-all-comments makes clang attach ordinary /* */ comments to declarations, so they can be copied as doc comments.
    foreach (string arg in new[] { "-Xclang", "-ast-dump=json", "-fsyntax-only", "-fparse-all-comments", "-x", "c", header })
        start.ArgumentList.Add(arg);

    Process clang;
    try
    {
        clang = Process.Start(start)!;
    }
    catch (Win32Exception e)
    {
        throw new GeneratorException($"cannot run clang ({e.Message}); install it, e.g. apt-get install clang");
    }
    using (clang)
    {
        // Read stderr concurrently: a full pipe would block clang while we wait on stdout.
        Task<string> errors = clang.StandardError.ReadToEndAsync();
        string json = clang.StandardOutput.ReadToEnd();
        clang.WaitForExit();
        if (clang.ExitCode != 0)
            throw new GeneratorException($"clang failed on {header} (exit code {clang.ExitCode}):\n{errors.Result}");
        Console.Error.Write(errors.Result);
        return json;
    }
}
