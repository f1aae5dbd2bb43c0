using System.Runtime.InteropServices;
using OnnxStream.Conversion;
using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Runtime;
using OnnxStream.Tests.Graph.OnnxFormat;
using OnnxStream.Tests.StableDiffusion.Pipeline;
using OnnxStream.Weights;

namespace OnnxStream.Tests.Graph;

/// <summary>
/// Every file a model names must be in the model's folder once links are followed: a model.txt weight, an .onnx tensor's
/// external data, the folder's range_data.txt. Otherwise any file of the machine could be read through a model into its
/// outputs (or into a converted folder). <see cref="ModelLoadOptions.AllowWeightsOutsideModelFolder"/> lifts the rule.
/// </summary>
internal sealed class ModelFolderConfinementTests
{
    private static readonly float[] Secret = [10, 20, 30];
    private string _root = "";
    private string _model = "";
    private string _outside = "";

    [SetUp]
    public void CreateFolders()
    {
        _root = Directory.CreateTempSubdirectory("onnxstream-confine-").FullName;
        _model = Directory.CreateDirectory(Path.Combine(_root, "model")).FullName;
        var elsewhere = Directory.CreateDirectory(Path.Combine(_root, "elsewhere")).FullName;
        _outside = Path.Combine(elsewhere, "outside.bin");
        File.WriteAllBytes(_outside, Bytes(Secret));
    }

    [TearDown]
    public void DeleteFolders() => Directory.Delete(_root, recursive: true);

    private static byte[] Bytes(float[] values) => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    /// <summary>The name a model gives the outside file: through <c>..</c>, absolute, a link to it, or a path through a linked folder.</summary>
    private string OutsideName(string kind)
    {
        switch (kind)
        {
            case "dotdot": return "../elsewhere/outside.bin";
            case "absolute": return _outside;
            case "link":
                File.CreateSymbolicLink(Path.Combine(_model, "linked.bin"), _outside);
                return "linked.bin";
            default:
                Directory.CreateSymbolicLink(Path.Combine(_model, "sub"), Path.GetDirectoryName(_outside)!);
                return "sub/outside.bin";
        }
    }

    private string WriteModelText(string weight)
    {
        File.WriteAllText(Path.Combine(_model, "model.txt"), $"add:Add*input:x(3);{weight}(float32:3)*output:y(3)\n");
        return _model;
    }

    private string WriteOnnx(string location) =>
        new OnnxTestModel().Input("x", 3).Output("y", 3).Initializer(OnnxTestModel.External("the_weight", location, 0, 12, 3))
            .Node("Add", ["x", "the_weight"], ["y"], "add").Save(_model);

    private static byte[] WeightBytes(ModelGraph graph)
    {
        var weight = graph.Nodes.SelectMany(n => n.Inputs).First(i => i is { IsWeight: true })!;
        using var tensor = WeightFileReader.Read(weight, new NativeAllocator());
        return tensor.Bytes.ToArray();
    }

    private static readonly ModelLoadOptions Allowed = new() { AllowWeightsOutsideModelFolder = true };

    [TestCase("dotdot")]
    [TestCase("absolute")]
    [TestCase("link")]
    [TestCase("linked-folder")]
    public void A_model_txt_weight_outside_the_folder_is_refused_naming_the_node_and_the_path(string kind)
    {
        var name = OutsideName(kind);
        var folder = WriteModelText(name);

        var error = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(folder))!;

        Assert.That(error.Message, Does.Contain("model.txt:1").And.Contain("node 'add'").And.Contain($"'{name}'").And.Contain(_outside)
            .And.Contain("outside the model folder").And.Contain("--allow-outside-weights"));
        Assert.That(WeightBytes(ModelLoader.Load(folder, Allowed)), Is.EqualTo(Bytes(Secret)), "allowed: the file is read");
    }

    [TestCase("dotdot")]
    [TestCase("absolute")]
    [TestCase("link")]
    [TestCase("linked-folder")]
    public void Onnx_external_data_outside_the_folder_is_refused_naming_the_tensor_and_the_path(string kind)
    {
        var path = WriteOnnx(OutsideName(kind));

        var error = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(path))!;

        Assert.That(error.Message, Does.Contain("the_weight").And.Contain(_outside).And.Contain("outside the model folder"));
        Assert.That(WeightBytes(ModelLoader.Load(path, Allowed)), Is.EqualTo(Bytes(Secret)), "allowed: the file is read");
    }

    [TestCase("dotdot")]
    [TestCase("absolute")]
    [TestCase("link")]
    public void Convert_refuses_external_data_outside_the_folder_and_copies_none_of_it(string kind)
    {
        var path = WriteOnnx(OutsideName(kind));
        var output = Path.Combine(_root, "converted");

        var error = Assert.Throws<ModelFormatException>(() => ModelFolderWriter.Convert(path, output))!;

        Assert.That(error.Message, Does.Contain("the_weight").And.Contain(_outside).And.Contain("outside the model folder"));
        Assert.That(Directory.Exists(output), Is.False, "nothing written");
        ModelFolderWriter.Convert(path, output, new ModelConversionOptions { AllowWeightsOutsideModelFolder = true });
        Assert.That(Directory.EnumerateFiles(output, "*.bin").Select(File.ReadAllBytes), Has.Some.EqualTo(Bytes(Secret)), "allowed: copied");
    }

    [Test]
    public void A_linked_model_folder_and_links_that_stay_inside_it_are_fine()
    {
        File.WriteAllBytes(Path.Combine(_model, "inside.bin"), Bytes(Secret));
        Directory.CreateDirectory(Path.Combine(_model, "weights"));
        File.CreateSymbolicLink(Path.Combine(_model, "weights", "alias.bin"), Path.Combine("..", "inside.bin"));
        WriteModelText("weights/alias.bin");
        var linkedFolder = Path.Combine(_root, "linked-model");
        Directory.CreateSymbolicLink(linkedFolder, _model);

        Assert.That(WeightBytes(ModelLoader.Load(linkedFolder)), Is.EqualTo(Bytes(Secret)));
        Assert.That(WeightBytes(ModelLoader.Load(WriteOnnx("weights/../inside.bin"))), Is.EqualTo(Bytes(Secret)));
    }

    [Test]
    public void The_folders_range_data_may_not_lead_outside_it()
    {
        File.WriteAllBytes(Path.Combine(_model, "inside.bin"), Bytes(Secret));
        File.WriteAllText(Path.Combine(_root, "elsewhere", "ranges.txt"), "add,-1,1\n");
        File.CreateSymbolicLink(Path.Combine(_model, "range_data.txt"), Path.Combine(_root, "elsewhere", "ranges.txt"));
        // Two operations: the first one's output is not a graph output, so the range file quantizes something.
        File.WriteAllText(Path.Combine(_model, "model.txt"),
            "add:Add*input:x(3);inside.bin(float32:3)*output:a(3)\nrelu:Relu*input:a(3)*output:y(3)\n");
        var graph = ModelLoader.Load(_model);
        var options = new InferenceSessionOptions { ActivationQuantization = ActivationQuantization.Static };

        var error = Assert.Throws<ModelFormatException>(() => new InferenceSession(graph, options).Dispose())!;

        Assert.That(error.Message, Does.Contain("range_data.txt").And.Contain("outside the model folder"));
        options.AllowWeightsOutsideModelFolder = true;
        using var session = new InferenceSession(graph, options);
    }

    [Test]
    public void The_cli_refuses_a_weight_outside_the_folder_without_a_stack_trace_and_allow_outside_weights_lifts_it()
    {
        var folder = WriteModelText("../elsewhere/outside.bin");

        var refused = SdCommandTests.RunCli("info", folder);
        Assert.That(refused, Does.Contain("error: ").And.Contain("outside the model folder").And.Not.Contain("   at "));

        var allowed = SdCommandTests.RunCli("info", folder, "--allow-outside-weights");
        Assert.That(allowed, Does.Contain("parameters: 3").And.Not.Contain("error"));
    }
}
