// Consumer of the packed OnnxStream NuGet package (template for PackageConsumerTests).
// Runs one float32 matmul through the packaged native library and proves, from /proc/self/maps,
// that the shim and XNNPACK (and its pthreadpool and cpuinfo) came from the package, not the system.
using System.Runtime.InteropServices;
using OnnxStream.Kernels;
using OnnxStream.Memory;

var failures = new List<string>();

// A [3, 4] × B [4, 2] + bias: B is ONNX MatMul's [in, out] layout, hence transposeWeights.
float[] a = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
float[] b = [1, 2, 3, 4, 5, 6, 7, 8];
float[] bias = [0.5f, -1f];
// Row 0: 1·1+2·3+3·5+4·7 = 50, 1·2+2·4+3·6+4·8 = 60; row 1: 114, 140; row 2: 178, 220; plus bias.
float[] expected = [50.5f, 59f, 114.5f, 139f, 178.5f, 219f];

using (var pool = XnnThreadPool.Create(2))
using (var matmul = FullyConnectedOperator.CreateFloat32(4, 2, b, bias, transposeWeights: true))
using (var input = NativeBuffer<float>.CopyOf(a))
using (var output = NativeBuffer<float>.Allocate(3 * 2))
{
    matmul.Run(pool, 3, input, output);
    var result = output.Span.ToArray();
    Console.WriteLine($"threads: {pool.ThreadCount}");
    for (var row = 0; row < 3; row++)
        Console.WriteLine($"row {row}: {result[row * 2]} {result[row * 2 + 1]}");
    for (var i = 0; i < expected.Length; i++)
        if (Math.Abs(result[i] - expected[i]) > 1e-4f)
            failures.Add($"matmul element {i}: got {result[i]}, expected {expected[i]}");
}
Console.WriteLine($"rid: {RuntimeInformation.RuntimeIdentifier}");
Console.WriteLine($"xnnpack commit: {NativeRuntime.XnnpackCommit}");

// Which files the loader mapped for each library (a path may be followed by " (deleted)"; skip those).
var mapped = File.ReadLines("/proc/self/maps")
    .Select(line => line.IndexOf('/') is var slash and >= 0 ? line[slash..] : null)
    .Where(path => path != null && !path.EndsWith(" (deleted)", StringComparison.Ordinal))
    .Select(path => path!)
    .Distinct()
    .ToList();

string? shimDirectory = null;
foreach (var library in new[] { "libonnxstream_native.so", "libXNNPACK.so.0", "libpthreadpool.so.0", "libcpuinfo.so.0" })
{
    var paths = mapped.Where(p => Path.GetFileName(p) == library).ToList();
    foreach (var path in paths)
        Console.WriteLine($"loaded {library}: {path}");
    if (paths.Count != 1)
    {
        failures.Add($"{library} is mapped {paths.Count} times ({string.Join(", ", paths)}); expected once, from the package");
        continue;
    }
    var directory = Path.GetDirectoryName(paths[0])!;
    if (directory.StartsWith("/usr/", StringComparison.Ordinal) || directory.StartsWith("/lib", StringComparison.Ordinal))
        failures.Add($"{library} was loaded from the system ({paths[0]}), not from the package");
    else if (library == "libonnxstream_native.so")
        shimDirectory = directory;
    else if (shimDirectory != null && directory != shimDirectory)
        failures.Add($"{library} was loaded from {directory}, not beside the shim in {shimDirectory}");
}

// A copy under another file name (e.g. a versioned libXNNPACK.so.0.0.0) would escape the checks above.
string[] prefixes = ["libXNNPACK.so.", "libpthreadpool.so.", "libcpuinfo.so."];
foreach (var path in mapped)
{
    var name = Path.GetFileName(path);
    if (prefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal)) && !name.EndsWith(".so.0", StringComparison.Ordinal))
        failures.Add($"an extra copy of {name} is mapped: {path}");
}

foreach (var failure in failures)
    Console.Error.WriteLine($"FAIL: {failure}");
if (failures.Count > 0)
    return 1;
Console.WriteLine("consumer ok");
return 0;
