using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Graph;

internal sealed class ModelTextReaderTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-modeltxt-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    private string Write(string modelText, params (string Name, int Bytes)[] weights)
    {
        foreach (var (name, bytes) in weights) File.WriteAllBytes(Path.Combine(_folder, name), new byte[bytes]);
        var path = Path.Combine(_folder, "model.txt");
        File.WriteAllText(path, modelText);
        return path;
    }

    [Test]
    public void Reads_nodes_tensors_weights_attributes_and_derives_inputs_and_outputs()
    {
        var path = Write(
            "Conv_4:Conv*input:input_2E_1(1,4,64,64);w_nchw.bin(uint8[0.0035054587850383684,134]:4,4,1,1);b.bin(float32:4)*output:x(1,4,64,64)*dilations:1,1;group:1;kernel_shape:1,1;pads:0,0,0,0;strides:1,1\r\n" +
            "/r/Resize:Resize*input:x(1,4,64,64);;s.bin(float32:4)*output:latent_5F_sample(1,4,128,128);extra(1)*mode:nearest;cubic_coeff_a:-0.75\n" +
            "\n",
            ("w_nchw.bin", 16), ("b.bin", 16), ("s.bin", 16));

        var graph = ModelTextReader.Read(_folder);

        Assert.That(graph.Nodes.Select(n => n.Name), Is.EqualTo(new[] { "Conv_4", "/r/Resize" }));
        var conv = graph.Nodes[0];
        Assert.That(conv.Source, Does.EndWith("model.txt:1"));
        Assert.That(conv.Inputs[1]!.Quantization, Is.EqualTo(new Quantization(0.0035054587850383684f, 134)));
        Assert.That(conv.Inputs[1]!.WeightType, Is.EqualTo(ElementType.UInt8));
        Assert.That(conv.Inputs[2]!.Location!.Length, Is.EqualTo(16));
        Assert.That(conv.Attributes.GetInts("pads"), Is.EqualTo(new long[] { 0, 0, 0, 0 }));
        Assert.That(graph.Nodes[1].Inputs[1], Is.Null, "an empty descriptor is an omitted optional input");
        Assert.That(graph.Nodes[1].Attributes.GetFloat("cubic_coeff_a", 0), Is.EqualTo(-0.75f));
        Assert.That(graph.Inputs.Select(i => i.Name), Is.EqualTo(new[] { "input.1" }));
        Assert.That(graph.Outputs.Select(o => o.Name), Is.EqualTo(new[] { "latent_sample", "extra" }));
        Assert.That(graph.WeightsInUseOrder().Select(w => w.Name), Is.EqualTo(new[] { "w_nchw.bin", "b.bin", "s.bin" }));
    }

    [TestCase("Conv*input:x(1)*output:y(1)", "NAME:OPTYPE")]
    [TestCase("a:Relu*input:x(1)", "3 or 4")]
    [TestCase("a:Relu*inputs:x(1)*output:y(1)", "must start with 'input:'")]
    [TestCase("a:Relu*input:x(1,a)*output:y(1)", "comma-separated list of dimensions")]
    [TestCase("a:Relu*input:x1*output:y(1)", "NAME(SHAPE)")]
    [TestCase("a:Relu*input:x_2G_(1)*output:y(1)", "malformed _XX_ escape")]
    [TestCase("a:Relu*input:w.bin(float64:1)*output:y(1)", "unknown type 'float64'")]
    [TestCase("a:Relu*input:w.bin(float32:2)*output:y(1)", "holds 4 bytes")]
    [TestCase("a:Relu*input:missing.bin(float32:1)*output:y(1)", "is missing")]
    [TestCase("a:Relu*input:x(1)*output:y(1)*alpha", "not NAME:VALUE")]
    [TestCase("a:Relu*input:x(1)*output:", "the output list is empty")]
    [TestCase("a:Relu*input:x(1)*output:*alpha:1", "the output list is empty")]
    [TestCase("c:Conv*input:x(1,1,2,2);w.bin(float32:1,1,1,1)*output:y(1,1,2,2)*dilations:1,1;group:1;", "has an empty entry: the line is cut")]
    [TestCase("c:Conv*input:x(1,1,2,2);w.bin(float32:1,1,1,1)*output:y(1,1,2,2)*dilations:1,1;;group:1", "has an empty entry")]
    [TestCase("c:Conv*input:x(1,1,2,2);w.bin(float32:1,1,1,1)*output:y(1,1,2,2)*dilations:1,1;pads:0,0,", "attribute 'pads:0,0,' has an empty list element: the line is cut")]
    [TestCase("c:Conv*input:x(1,1,2,2);w.bin(float32:1,1,1,1)*output:y(1,1,2,2)*dilations:1,1;kernel_sh", "attribute 'kernel_sh' is not NAME:VALUE")]
    [TestCase("a:Relu*input:x(1)*output:y(1)\na:Relu*input:y(1)*output:z(1)", "used twice")]
    [TestCase("a:Relu*input:y(1)*output:z(1)\nb:Relu*input:x(1)*output:y(1)", "used before the node that produces it")]
    [TestCase("a:Relu*input:x(1)*output:y(1)\nb:Relu*input:x(1)*output:y(1)", "produced twice")]
    public void Malformed_models_are_rejected_naming_the_line(string modelText, string message)
    {
        var path = Write(modelText, ("w.bin", 4));
        var error = Assert.Throws<ModelFormatException>(() => ModelTextReader.Read(path))!;
        Assert.That(error.Message, Does.Contain(message));
        Assert.That(error.Message, Does.Contain("model.txt:"));
    }

    /// <summary>The Hugging Face cache's snapshots link each file to its blob: a weight's size is its blob's, not the link's.</summary>
    [Test]
    public void Weight_files_behind_symbolic_links_are_measured_by_their_target()
    {
        var repo = Path.Combine(_folder, "models--org--name");
        var blobs = Directory.CreateDirectory(Path.Combine(repo, "blobs")).FullName;
        File.WriteAllBytes(Path.Combine(blobs, "0123abcd"), new byte[8]);
        var snapshot = Directory.CreateDirectory(Path.Combine(repo, "snapshots", "c0ffee")).FullName;
        File.CreateSymbolicLink(Path.Combine(snapshot, "w.bin"), Path.Combine("..", "..", "blobs", "0123abcd"));
        File.CreateSymbolicLink(Path.Combine(snapshot, "gone.bin"), Path.Combine("..", "..", "blobs", "missing"));
        File.WriteAllText(Path.Combine(snapshot, "model.txt"), "a:Relu*input:w.bin(float32:2)*output:y(2)");
        Assert.That(ModelTextReader.Read(snapshot).Nodes[0].Inputs[0]!.Location!.Length, Is.EqualTo(8));

        File.WriteAllText(Path.Combine(snapshot, "model.txt"), "a:Relu*input:gone.bin(float32:2)*output:y(2)");
        Assert.That(() => ModelTextReader.Read(snapshot), Throws.TypeOf<ModelFormatException>().With.Message.Contains("gone.bin is missing"));
    }

    [TestCase("input.1", "input_2E_1")]
    [TestCase("latent_sample", "latent_5F_sample")]
    [TestCase("/model.0/conv/Conv_output_0", "_2F_model_2E_0_2F_conv_2F_Conv_5F_output_5F_0")]
    [TestCase("onnx::Split_184", "onnx_3A__3A_Split_5F_184")]
    public void Names_escape_and_unescape(string name, string escaped)
    {
        Assert.That(NameEscaping.Escape(name), Is.EqualTo(escaped));
        Assert.That(NameEscaping.TryUnescape(escaped, out var back), Is.True);
        Assert.That(back, Is.EqualTo(name));
    }
}
