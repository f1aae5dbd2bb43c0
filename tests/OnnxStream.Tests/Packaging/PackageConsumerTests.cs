using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace OnnxStream.Tests.Packaging;

/// <summary>
/// Packs src/OnnxStream into a temp feed, checks the .nupkg carries both RIDs' natives, then builds and
/// runs tests/PackageConsumer against that package as an outside project would, and checks the consumer
/// loaded the packaged XNNPACK rather than the system's. Slow (pack, restore, build): minutes, not seconds.
/// </summary>
[TestFixture]
[Category("Packaging")]
[NonParallelizable]
internal sealed class PackageConsumerTests
{
    private static readonly string[] Rids = ["linux-x64", "linux-arm64"];

    private static readonly string[] NativeFiles =
        ["libonnxstream_native.so", "libXNNPACK.so.0", "libpthreadpool.so.0", "libcpuinfo.so.0"];

    /// <summary>ELF e_machine per RID: EM_X86_64 and EM_AARCH64.</summary>
    private static readonly Dictionary<string, ushort> ElfMachine = new() { ["linux-x64"] = 62, ["linux-arm64"] = 183 };

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(5);

    private string _repositoryRoot = "";
    private string _workDirectory = "";
    private string _feedDirectory = "";
    private string _version = "";
    private string _packageFile = "";

    [OneTimeSetUp]
    public void PackIntoTempFeed()
    {
        _repositoryRoot = FindRepositoryRoot();
        _workDirectory = CanonicalPath(Directory.CreateTempSubdirectory("onnxstream-pack-").FullName);
        _feedDirectory = Path.Combine(_workDirectory, "feed");
        // A version no cache has ever seen, so restore can only get it from this run's feed.
        _version = $"0.0.0-test{DateTime.UtcNow:yyyyMMddHHmmss}{Environment.ProcessId}";

        // Build outputs go to the temp folder too, so packing neither races with nor dirties the
        // repository's own bin/obj (which would otherwise be rebuilt at the test version).
        var build = Path.Combine(_workDirectory, "build");
        var result = RunDotnet(_repositoryRoot,
            "pack", Path.Combine(_repositoryRoot, "src", "OnnxStream", "OnnxStream.csproj"),
            "-c", "Release", "-o", _feedDirectory, $"-p:Version={_version}",
            $"-p:OutputPath={build}/bin/", $"-p:IntermediateOutputPath={build}/obj/",
            $"-p:MSBuildProjectExtensionsPath={build}/ext/", $"-p:NuspecOutputPath={build}/nuspec/");
        Assert.That(result.ExitCode, Is.Zero, $"dotnet pack failed.\n{result}");

        _packageFile = Path.Combine(_feedDirectory, $"OnnxStream.{_version}.nupkg");
        Assert.That(File.Exists(_packageFile), Is.True,
            $"dotnet pack did not write {_packageFile}; the feed holds: {string.Join(", ", Directory.GetFiles(_feedDirectory))}\n{result}");
    }

    [OneTimeTearDown]
    public void DeleteTempFolders()
    {
        if (_workDirectory.Length > 0 && Directory.Exists(_workDirectory))
            Directory.Delete(_workDirectory, recursive: true);
    }

    [Test]
    public void Package_holds_the_assembly_and_both_rids_natives()
    {
        using var package = ZipFile.OpenRead(_packageFile);
        var entries = package.Entries.ToDictionary(e => e.FullName, StringComparer.Ordinal);
        TestContext.Out.WriteLine($"{Path.GetFileName(_packageFile)}:");
        foreach (var entry in package.Entries.OrderBy(e => e.FullName, StringComparer.Ordinal))
            TestContext.Out.WriteLine($"  {entry.FullName} ({entry.Length} bytes)");

        var problems = new List<string>();
        if (!entries.ContainsKey("lib/net10.0/OnnxStream.dll"))
            problems.Add("missing lib/net10.0/OnnxStream.dll");
        var missingRids = new List<string>();
        foreach (var rid in Rids)
        {
            var missing = 0;
            foreach (var file in NativeFiles)
            {
                var name = $"runtimes/{rid}/native/{file}";
                if (!entries.TryGetValue(name, out var entry))
                {
                    problems.Add($"missing {name}");
                    missing++;
                    continue;
                }
                var machine = ReadElfMachine(entry);
                if (machine != ElfMachine[rid])
                    problems.Add($"{name} is not an ELF shared object for {rid} (e_machine {machine?.ToString() ?? "unreadable"}, expected {ElfMachine[rid]})");
            }
            if (missing > 0)
                missingRids.Add(rid);
        }

        if (problems.Count == 0)
            return;
        var message = new StringBuilder($"{Path.GetFileName(_packageFile)} is incomplete:\n  {string.Join("\n  ", problems)}\n");
        foreach (var rid in missingRids)
            message.Append($"artifacts/native/{rid} was not staged when packing: run `./build.sh{(rid == "linux-x64" ? "" : $" --rid {rid}")}` first" +
                           $" (to stage both: ./build.sh && ./build.sh --rid linux-arm64).\n");
        Assert.Fail(message.ToString());
    }

    [Test]
    public void Consumer_project_restores_the_package_and_runs_its_natives()
    {
        var consumer = Path.Combine(_workDirectory, "consumer");
        var packages = Path.Combine(_workDirectory, "packages");
        var template = Path.Combine(_repositoryRoot, "tests", "PackageConsumer");
        Directory.CreateDirectory(consumer);
        foreach (var file in new[] { "PackageConsumer.csproj", "Program.cs" })
            File.Copy(Path.Combine(template, file), Path.Combine(consumer, file));

        // The machine's own sources (a mirror may be configured) stay; the temp feed is added to them.
        new XDocument(new XElement("configuration",
            new XElement("packageSources",
                new XElement("add", new XAttribute("key", "onnxstream-test-feed"), new XAttribute("value", _feedDirectory)))))
            .Save(Path.Combine(consumer, "nuget.config"));
        // Restored packages go to a temp folder, so the global package cache never sees the test version.
        new XDocument(new XElement("Project",
            new XElement("PropertyGroup",
                new XElement("OnnxStreamVersion", _version),
                new XElement("RestorePackagesPath", packages + "/"))))
            .Save(Path.Combine(consumer, "Directory.Build.props"));

        var result = RunDotnet(consumer, "run", "-c", "Release");
        TestContext.Out.WriteLine(result.ToString());
        Assert.That(result.ExitCode, Is.Zero, $"the consumer failed.\n{result}");
        Assert.That(result.StandardOutput, Does.Contain("consumer ok"), $"the consumer did not finish.\n{result}");

        // The consumer already refuses system copies; check positively that the natives came from this run.
        foreach (var library in new[] { "libonnxstream_native.so", "libXNNPACK.so.0" })
        {
            var match = Regex.Match(result.StandardOutput, $@"^loaded {Regex.Escape(library)}: (.+)$", RegexOptions.Multiline);
            Assert.That(match.Success, Is.True, $"the consumer did not report where {library} came from.\n{result}");
            var path = match.Groups[1].Value.Trim();
            var fromOutput = path.StartsWith(consumer + "/", StringComparison.Ordinal);
            var fromPackages = path.StartsWith(packages + "/", StringComparison.Ordinal);
            Assert.That(fromOutput || fromPackages, Is.True,
                $"{library} was loaded from {path}, which is neither under the consumer ({consumer}) nor the restored packages ({packages}).\n{result}");
        }
    }

    /// <summary>e_machine of an ELF file in the package, or null if the entry is not ELF.</summary>
    private static ushort? ReadElfMachine(ZipArchiveEntry entry)
    {
        using var stream = entry.Open();
        var header = new byte[20];
        var read = 0;
        while (read < header.Length && stream.Read(header, read, header.Length - read) is var n and > 0)
            read += n;
        if (read < header.Length || header[0] != 0x7f || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F')
            return null;
        var span = header.AsSpan(18, 2);
        return header[5] == 2 ? BinaryPrimitives.ReadUInt16BigEndian(span) : BinaryPrimitives.ReadUInt16LittleEndian(span);
    }

    /// <summary>The folder holding OnnxStream.sln, walking up from the test assembly.</summary>
    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); directory != null; directory = directory.Parent)
            if (File.Exists(Path.Combine(directory.FullName, "OnnxStream.sln")))
                return directory.FullName;
        throw new InvalidOperationException($"No OnnxStream.sln above {TestContext.CurrentContext.TestDirectory}.");
    }

    /// <summary>The path with every symbolic link resolved, as /proc/self/maps reports it.</summary>
    private static string CanonicalPath(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var parent = Path.GetDirectoryName(full);
        if (parent == null)
            return full;
        var resolved = Path.Combine(CanonicalPath(parent), Path.GetFileName(full));
        var target = new DirectoryInfo(resolved).LinkTarget;
        return target == null ? resolved : CanonicalPath(Path.IsPathRooted(target) ? target : Path.Combine(Path.GetDirectoryName(resolved)!, target));
    }

    private sealed record CommandResult(string CommandLine, int ExitCode, string StandardOutput, string StandardError, TimeSpan Elapsed)
    {
        public override string ToString() =>
            $"$ {CommandLine}\nexit code {ExitCode} after {Elapsed.TotalSeconds:F0} s\n--- stdout ---\n{StandardOutput}\n--- stderr ---\n{StandardError}";
    }

    /// <summary>Runs the dotnet CLI, killing it (and its children) after <see cref="CommandTimeout"/>.</summary>
    private static CommandResult RunDotnet(string workingDirectory, params string[] arguments)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        // No build servers: a lingering MSBuild node or compiler server would hold the output pipes open.
        start.ArgumentList.Add("--disable-build-servers");
        // `dotnet test` runs inside MSBuild; its MSBuild* variables must not steer the child's build.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";

        var commandLine = $"(cd {workingDirectory} && {dotnet} {string.Join(' ', start.ArgumentList)})";
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(CommandTimeout);
        var exitCode = -1;
        try
        {
            process.WaitForExitAsync(timeout.Token).GetAwaiter().GetResult();
            exitCode = process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
            lock (stderr) stderr.AppendLine($"[killed: no exit within {CommandTimeout.TotalMinutes:F0} minutes]");
        }
        lock (stdout) lock (stderr)
            return new CommandResult(commandLine, exitCode, stdout.ToString(), stderr.ToString(), clock.Elapsed);
    }
}
