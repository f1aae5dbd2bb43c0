using System.Diagnostics;
using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Runtime;

/// <summary>
/// Models asking for tensors larger than the machine can hold (issue 13, case 2): each is refused with an error naming the
/// node, the tensor and the size, quickly and before anything large is allocated, at load, by <see cref="ModelSummary"/>
/// (<c>onnxstream info</c>), when a session is created, and when an operation allocates at run time.
/// </summary>
internal sealed class TensorLimitTests
{
    private const long OneGiB = 1L << 30;
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-limits-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    /// <summary>A model.txt of the given lines, with int64 weight <c>dims.bin</c> holding <paramref name="dims"/>.</summary>
    private ModelGraph Load(long[] dims, params string[] lines)
    {
        File.WriteAllBytes(Path.Combine(_folder, "dims.bin"), dims.SelectMany(BitConverter.GetBytes).ToArray());
        File.WriteAllText(Path.Combine(_folder, "model.txt"), string.Join('\n', lines) + "\n");
        var clock = Stopwatch.StartNew();
        var peakBefore = PeakResidentBytes();
        var graph = ModelLoader.Load(_folder);
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "loading built something large");
        Assert.That(PeakResidentBytes() - peakBefore, Is.LessThan(OneGiB), "loading built something large");
        return graph;
    }

    /// <summary>The process's peak resident set (Linux; 0 elsewhere).</summary>
    private static long PeakResidentBytes()
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path)) return 0;
        var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    private static string ConstantOfShape(long[] dims, string value = "") =>
        $"cos:ConstantOfShape*input:dims.bin(int64:{dims.Length})*output:c(){value}";

    // Add reads the huge constant: shape inference once reserved a placeholder of its size (a failed allocation there freed
    // its block twice: "free(): double free detected", the test host aborting).
    [TestCase(new long[] { 100000, 100000 })]
    [TestCase(new long[] { 65536, 65536 })]
    [TestCase(new long[] { 100000, 100000, 100 })]
    public void A_huge_ConstantOfShape_is_an_error_naming_it_in_info_and_session(long[] dims)
    {
        var graph = Load(dims, ConstantOfShape(dims), "add:Add*input:x(1);c()*output:out()");
        AssertRefused(() => ModelSummary.Of(graph), "'cos'", "'c'");
        AssertRefused(() => new InferenceSession(graph).Dispose(), "'cos'", "'c'");
    }

    [Test]
    public void A_ConstantOfShape_of_a_billion_elements_is_not_built_at_load_and_is_refused_over_the_budget()
    {
        long[] dims = [1000, 1000, 1000];
        // int64: 8 GB (the 7.8 GB built at load, 35 s, before any error).
        var graph = Load(dims, ConstantOfShape(dims, "*value:int64:7"), "add:Add*input:x(1);c()*output:out()");
        var options = new InferenceSessionOptions { MaxTensorBytes = OneGiB };
        var message = AssertRefused(() => ModelSummary.Of(graph, options), "'cos'", "'c'", "int64[1000,1000,1000]", "8,000,000,000 bytes");
        Assert.That(message, Does.Contain("MaxTensorBytes"));
        AssertRefused(() => new InferenceSession(graph, options).Dispose(), "'cos'", "'c'");
    }

    [Test]
    public void Expand_to_a_huge_shape_is_an_error_naming_it_in_info_and_session()
    {
        var graph = Load([100000, 100000], "exp:Expand*input:x(1);dims.bin(int64:2)*output:e()", "add:Add*input:x(1);e()*output:out()");
        AssertRefused(() => ModelSummary.Of(graph), "'exp'", "'e'");
        AssertRefused(() => new InferenceSession(graph).Dispose(), "'exp'", "'e'");
    }

    [Test]
    public void Tile_with_huge_repeats_is_an_error_naming_it_in_info_and_session()
    {
        var graph = Load([1000000, 1000000], "tile:Tile*input:x(2,2);dims.bin(int64:2)*output:out()");
        AssertRefused(() => ModelSummary.Of(graph), "'tile'", "'out'");
        AssertRefused(() => new InferenceSession(graph).Dispose(), "'tile'", "'out'");
    }

    // Shapes known only at run time: the operation's output is refused when it is allocated, before any memory is taken.
    [TestCase("cos:ConstantOfShape*input:n(3)*output:out()", new long[] { 1000, 1000, 1000 }, "'cos'")]
    [TestCase("tile:Tile*input:x(2,2);n(2)*output:out()", new long[] { 100000, 100000 }, "'tile'")]
    [TestCase("tile:Tile*input:x(2,2);n(2)*output:out()", new long[] { 1000000, 1000000 }, "'tile'")]
    public void An_output_over_the_budget_found_at_run_time_is_an_operator_error_before_allocation(string line, long[] values, string node)
    {
        var graph = Load([], line);
        using var session = new InferenceSession(graph, new InferenceSessionOptions { MaxTensorBytes = OneGiB });
        using var n = Tensor.From<long>(values, [values.Length], session.Allocator);
        using var x = Tensor.From<float>([1, 2, 3, 4], [2, 2], session.Allocator);
        var inputs = new Dictionary<string, Tensor> { ["n"] = n };
        if (line.Contains("x(2,2)")) inputs["x"] = x;
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<OperatorException>(() => session.Run(inputs).Dispose())!;
        Assert.That(error.Message, Does.Contain(node).And.Contain("output 0 'out'").And.Contain("bytes"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        Assert.That(session.Allocator.PeakBytes, Is.LessThan(1 << 20), "something large was allocated");
    }

    [Test]
    public void Tensor_Allocate_refuses_a_tensor_over_its_allocators_budget_before_allocating()
    {
        var allocator = new NativeAllocator { MaxTensorBytes = 1000 };
        Assert.Throws<TensorTooLargeException>(() => Tensor.Allocate(ElementType.Float32, [251], allocator));
        Assert.Throws<TensorTooLargeException>(() => Tensor.Allocate(ElementType.UInt8, [int.MaxValue, int.MaxValue, int.MaxValue], allocator));
        Assert.That(allocator.PeakBytes, Is.Zero);
        using var fits = Tensor.Allocate(ElementType.Float32, [250], allocator);
        Assert.That(TensorLimit.DefaultMaxBytes, Is.GreaterThan(0));
        Assert.That(TensorLimit.Bytes(ElementType.Int64, [int.MaxValue, int.MaxValue, int.MaxValue]), Is.EqualTo(long.MaxValue));
    }

    private static string AssertRefused(TestDelegate action, params string[] named)
    {
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<ModelFormatException>(action)!;
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        foreach (var name in named) Assert.That(error.Message, Does.Contain(name));
        Assert.That(error.Message, Does.Contain("bytes"));
        return error.Message;
    }
}
