using System.Text;
using OnnxStream.Fuzz;
using OnnxStream.Graph;
using OnnxStream.ModelBuilder;

namespace OnnxStream.Tests.Fuzz;

/// <summary>
/// Inputs the fuzz targets found a bug with, each refused now as a user error (under the fuzzer's time and allocation
/// limits) instead of what it did before, which each test's comment says.
/// </summary>
[Category("Fuzz")]
internal sealed class FuzzRegressionTests
{
    private readonly Dictionary<string, string> _workDirs = [];

    [OneTimeTearDown]
    public void DeleteWorkDirs()
    {
        foreach (var dir in _workDirs.Values) Directory.Delete(dir, recursive: true);
    }

    /// <summary>Runs <paramref name="input"/> through <paramref name="target"/>; returns the user error it was refused with.</summary>
    private Exception Refusal(string target, byte[] input)
    {
        var outcome = FuzzRunner.Check(target, input, WorkDir(target), new FuzzOptions());
        Assert.That(outcome.Finding, Is.Null, outcome.Finding?.ToString());
        Assert.That(outcome.Refusal, Is.Not.Null, "the input parsed");
        TestContext.Out.WriteLine($"{outcome.Refusal!.GetType().Name}: {outcome.Refusal.Message}");
        return outcome.Refusal;
    }

    /// <summary>The target's working folder, prepared by <see cref="FuzzSeeds.Prepare"/>.</summary>
    private string WorkDir(string target)
    {
        if (!_workDirs.TryGetValue(target, out var dir))
        {
            _workDirs[target] = dir = Directory.CreateTempSubdirectory($"fuzz-regression-{target}-").FullName;
            FuzzSeeds.Prepare(target, dir);
        }
        return dir;
    }

    private static byte[] Npy(byte major, string header, int dataBytes = 8)
    {
        var text = Encoding.Latin1.GetBytes(header);
        byte[] length = major == 1 ? [(byte)text.Length, (byte)(text.Length >> 8)] : BitConverter.GetBytes(text.Length);
        return [0x93, .. "NUMPY"u8, major, 0, .. length, .. text, .. new byte[dataBytes]];
    }

    [Test]
    public void Npy_format_2_header_length_of_2_GiB()
    {
        // Was: a 2 GiB header array allocated before reading (an allocation finding; OverflowException past 2^31).
        byte[] input = [0x93, .. "NUMPY"u8, 2, 0, 0x3A, 0, 0, 0x7B, .. "{'descr': '<f4', 'shape': (2,), }\n"u8];
        Assert.That(Refusal("npy", input), Is.TypeOf<FormatException>().With.Message.Contains("header"));
    }

    [Test]
    public void Npy_shape_past_the_data()
    {
        // Was: the tensor (16 GiB of int64) allocated and zeroed before the data was found missing: a hang, then an
        // OverflowException in Tensor.Bytes.
        var input = Npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2147483647,), }\n");
        Assert.That(Refusal("npy", input), Is.TypeOf<FormatException>().With.Message.Contains("shorter"));
    }

    [TestCase("99999999999999999999", TestName = "Npy_dimension_past_int32")]
    [TestCase("-1", TestName = "Npy_negative_dimension")]
    [TestCase("65536, 65536", TestName = "Npy_element_count_past_int32")]
    public void Npy_dimension(string dims)
    {
        // Was: OverflowException from int.Parse; ArgumentOutOfRangeException from Tensor.Allocate; OverflowException.
        var input = Npy(1, $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims},), }}\n");
        Assert.That(Refusal("npy", input), Is.TypeOf<FormatException>().With.Message.Contains("shape"));
    }

    [Test]
    public void Model_txt_activation_shape_past_int32_elements()
    {
        // Was: OutOfMemoryException in shape inference, reserving placeholder memory for 2^31 x 24 float32.
        var input = "m:MatMul*input:x(2147483647,3,8);mw.bin(float32:8,2)*output:y()\n"u8.ToArray();
        Assert.That(Refusal("modeltxt", input), Is.TypeOf<ModelFormatException>().With.Message.Contains("more than 2147483647 elements"));
    }

    [Test]
    public void Onnx_declared_shape_past_int32_elements()
    {
        // The model.txt case in an .onnx file's declared input shape (the same OutOfMemoryException in shape inference).
        var graph = new OnnxGraphBuilder("huge");
        var x = graph.Input("x", OnnxElementType.Float, int.MaxValue, 3, 8);
        graph.Output(graph.Node("MatMul", [x, graph.Parameter("w", [8, 2], WeightInit.Uniform(0.5f))]), "y", OnnxElementType.Float, int.MaxValue, 3, 2);
        var path = Path.Combine(WorkDir("onnx"), "huge.onnx");
        OnnxModelWriter.Write(graph, path);

        Assert.That(Refusal("onnx", File.ReadAllBytes(path)), Is.TypeOf<ModelFormatException>().With.Message.Contains("more than 2147483647 elements"));
    }
}
