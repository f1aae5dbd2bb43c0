using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Graph;

/// <summary>
/// The shapes a model.txt declares for operation outputs are checked against the ones shape inference computes at load: a
/// difference (e.g. a Conv line cut inside its attributes, which then runs with default padding) is an error naming the line,
/// the node, the tensor and both shapes, or with <see cref="ModelLoadOptions.Lenient"/> a warning; unknown dimensions (0),
/// all-unknown shapes and "()" are not checked.
/// </summary>
internal sealed class DeclaredShapeTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-declared-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    /// <summary>A 3×3 convolution (1 → 2 channels, 4×4) with <paramref name="attributes"/>, declaring its output <paramref name="declared"/>, then a Relu.</summary>
    private string Write(string attributes, string declared)
    {
        File.WriteAllBytes(Path.Combine(_folder, "w.bin"), new byte[2 * 9 * 4]);
        File.WriteAllText(Path.Combine(_folder, "model.txt"),
            $"conv:Conv*input:x(1,1,4,4);w.bin(float32:2,1,3,3)*output:c({declared})*{attributes}\n" +
            $"relu:Relu*input:c({declared})*output:y({declared})\n");
        return _folder;
    }

    [Test]
    public void A_conv_line_cut_before_its_pads_is_an_error_naming_the_line_the_tensor_and_both_shapes()
    {
        var folder = Write("dilations:1,1;group:1;kernel_shape:3,3", "1,2,4,4");
        var error = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(folder))!;
        Assert.That(error.Message, Does.Contain("Conv node 'conv' (").And.Contain("model.txt:1)"));
        Assert.That(error.Message, Does.Contain("output 'c' is declared [1,2,4,4] (0: unknown) but computes to [1,2,2,2]"));
    }

    [Test]
    public void Lenient_loading_warns_and_runs_with_the_computed_shape()
    {
        var folder = Write("dilations:1,1;group:1;kernel_shape:3,3", "1,2,4,4");
        var warnings = new List<string>();
        var graph = ModelLoader.Load(folder, new ModelLoadOptions { Lenient = true, Warning = warnings.Add });
        Assert.That(warnings, Has.Count.EqualTo(2).And.Some.Contain("output 'c' is declared [1,2,4,4]").And.Some.Contain("output 'y'"));
        Assert.That(graph.Outputs[0].Shape, Is.EqualTo(new[] { 1, 2, 2, 2 }));
        using var session = new InferenceSession(graph, new InferenceSessionOptions { Threads = 1 });
        using var x = Tensor.From<float>(new float[16], [1, 1, 4, 4], session.Allocator);
        using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = x });
        Assert.That(result.Outputs["y"].Shape, Is.EqualTo(new[] { 1, 2, 2, 2 }));
    }

    [Test]
    public void The_Stable_Diffusion_backend_loads_as_its_options_say()
    {
        var folder = Write("dilations:1,1;group:1;kernel_shape:3,3", "1,2,4,4");
        var options = new StableDiffusionOptions { ModelsPath = folder, Threads = 1 };
        Assert.That(() => OnnxStreamBackend.For(options).Open(folder, ComponentRole.UNet), Throws.TypeOf<ModelFormatException>().With.Message.Contains("a lenient load uses the computed shape"));
        var warnings = new List<string>();
        options.ModelLoading = new ModelLoadOptions { Lenient = true, Warning = warnings.Add };
        using var model = OnnxStreamBackend.For(options).Open(folder, ComponentRole.UNet);
        Assert.That(warnings, Has.Count.EqualTo(2));
    }

    [TestCase("1,2,4,4")]
    [TestCase("1,0,4,0")]
    [TestCase("0")]
    [TestCase("0,0")]
    [TestCase("")]
    public void Matching_or_unknown_declared_shapes_load(string declared)
    {
        var graph = ModelLoader.Load(Write("dilations:1,1;group:1;kernel_shape:3,3;pads:1,1,1,1;strides:1,1", declared));
        Assert.That(graph.Outputs[0].Shape, Is.EqualTo(new[] { 1, 2, 4, 4 }));
    }

    [TestCase("1,0,4", "[1,0,4]")]
    [TestCase("1,3,0,0", "[1,3,0,0]")]
    public void A_wrong_rank_or_known_dimension_is_an_error_even_beside_unknown_ones(string declared, string shown)
    {
        var folder = Write("dilations:1,1;group:1;kernel_shape:3,3;pads:1,1,1,1;strides:1,1", declared);
        Assert.That(() => ModelLoader.Load(folder), Throws.TypeOf<ModelFormatException>().With.Message.Contains($"is declared {shown} (0: unknown) but computes to [1,2,4,4]"));
    }
}
