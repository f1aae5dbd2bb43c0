using Google.Protobuf;
using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Graph.OnnxFormat;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.Graph;

/// <summary>Load-time static shape inference (with the operators' own shape code) and the folding it enables.</summary>
internal sealed class ShapeInferenceTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-shapes-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    /// <summary>
    /// diffusers' GroupNorm on an intermediate tensor, exported without value_info: Reshape to [N, groups, -1],
    /// InstanceNormalization, Reshape back to Shape(h), Mul, Add. Only inference can tell Shape(h), so only
    /// inference lets it fold.
    /// </summary>
    private OnnxTestModel GroupNormModel()
    {
        var model = new OnnxTestModel().Input("x", 2, 4, 5, 5).Output("y", 2, 6, 5, 5);
        model.Initializer(OnnxTestModel.Floats("w", OperatorTestHarnessRandom(6 * 4 * 9, 1), 6, 4, 3, 3))
            .Initializer(OnnxTestModel.Int64s("groups", [0, 3, -1], 3))
            .Initializer(OnnxTestModel.Floats("ones", [1, 1, 1], 3))
            .Initializer(OnnxTestModel.Floats("zeros", [0, 0, 0], 3))
            .Initializer(OnnxTestModel.Floats("gamma", OperatorTestHarnessRandom(6, 2), 6, 1, 1))
            .Initializer(OnnxTestModel.Floats("beta", OperatorTestHarnessRandom(6, 3), 6, 1, 1));
        model.Node("Conv", ["x", "w"], ["h"], "conv", OnnxTestModel.Ints("pads", 1, 1, 1, 1));
        model.Node("Reshape", ["h", "groups"], ["grouped"], "reshape");
        model.Node("InstanceNormalization", ["grouped", "ones", "zeros"], ["normalized"], "norm");
        model.Node("Shape", ["h"], ["h_shape"], "shape");
        model.Node("Reshape", ["normalized", "h_shape"], ["back"], "reshape_back");
        model.Node("Mul", ["back", "gamma"], ["scaled"], "mul");
        model.Node("Add", ["scaled", "beta"], ["y"], "add");
        return model;
    }

    private static float[] OperatorTestHarnessRandom(int count, int seed) => Kernels.Reference.RandomFloats(count, seed, -1, 1);

    [Test]
    public void Every_intermediate_gets_its_shape_and_the_shape_subgraph_folds()
    {
        var model = GroupNormModel();
        var graph = ModelLoader.Load(model.Save(_folder));

        Assert.That(graph.Nodes.Select(n => n.OpType), Is.EqualTo(new[] { "Conv", "Reshape", "InstanceNormalization", "Reshape", "Mul", "Add" }),
            "Shape(h) folded once h's shape was inferred");
        var shapes = graph.Nodes.SelectMany(n => n.Outputs).ToDictionary(o => o.Name);
        Assert.That(shapes["h"].Shape, Is.EqualTo(new[] { 2, 6, 5, 5 }));
        Assert.That(shapes["grouped"].Shape, Is.EqualTo(new[] { 2, 3, 50 }));
        Assert.That(shapes["normalized"].Shape, Is.EqualTo(new[] { 2, 3, 50 }));
        Assert.That(shapes["back"].Shape, Is.EqualTo(new[] { 2, 6, 5, 5 }));
        Assert.That(shapes.Values, Has.All.Matches<TensorDescriptor>(d => d.HasStaticShape && d.ActivationType == ElementType.Float32));
        var summary = ModelSummary.Of(graph);
        Assert.That(summary.UnknownShapes, Is.Zero);

        // The folded graph computes what ONNX Runtime computes on the original.
        var x = OperatorTestHarnessRandom(2 * 4 * 5 * 5, 4);
        float[] expected;
        using (var ort = new Microsoft.ML.OnnxRuntime.InferenceSession(model.ToModel().ToByteArray()))
        using (var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(x, [2, 4, 5, 5]))
        using (var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions())
        using (var outputs = ort.Run(runOptions, ["x"], [input], ["y"]))
            expected = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        using var session = new InferenceSession(graph, new InferenceSessionOptions { Threads = 1 });
        using var tensor = Tensor.From<float>(x, [2, 4, 5, 5], session.Allocator);
        using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = tensor });
        Assert.That(result.Outputs["y"].Span<float>().ToArray(), Is.EqualTo(expected).Within(1e-5f));
    }

    [Test]
    public void A_shape_known_only_at_run_time_stays_unknown_and_the_run_computes_it()
    {
        // Reshape(x, s) with s a graph input: its values, hence y's shape, exist only in a run.
        var model = new OnnxTestModel().Input("x", 2, 6).Output("z", 0, 0);
        model.Graph.Input.Add(new Onnx.ValueInfoProto
        {
            Name = "s",
            Type = new Onnx.TypeProto { TensorType = new Onnx.TypeProto.Types.Tensor { ElemType = (int)Onnx.TensorProto.Types.DataType.Int64, Shape = new Onnx.TensorShapeProto { Dim = { new Onnx.TensorShapeProto.Types.Dimension { DimValue = 2 } } } } },
        });
        model.Node("Reshape", ["x", "s"], ["y"], "reshape");
        model.Node("Sigmoid", ["y"], ["z"], "sigmoid");
        var graph = ModelLoader.Load(model.Save(_folder));
        var y = graph.Nodes[0].Outputs[0];
        Assert.That(y.HasStaticShape, Is.False);
        Assert.That(graph.Nodes[1].Outputs[0].HasStaticShape, Is.False);
        Assert.That(ModelSummary.Of(graph).UnknownShapes, Is.EqualTo(2));

        using var session = new InferenceSession(graph, new InferenceSessionOptions { Threads = 1 });
        using var x = Tensor.From<float>(new float[12], [2, 6], session.Allocator);
        using var s = Tensor.From<long>([3, 4], [2], session.Allocator);
        using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = x, ["s"] = s });
        Assert.That(result.Outputs["z"].Shape, Is.EqualTo(new[] { 3, 4 }));
        Assert.That(result.Outputs["z"].Span<float>().ToArray(), Is.All.EqualTo(0.5f));
    }

    [Test]
    public void A_model_folder_with_unknown_shapes_gets_them_and_token_ids_are_int64()
    {
        // The converter writes "()" for shapes the export did not state; the input is used as Gather indices.
        File.WriteAllBytes(Path.Combine(_folder, "table.bin"), Enumerable.Range(0, 10 * 4).SelectMany(i => BitConverter.GetBytes((float)i)).ToArray());
        File.WriteAllBytes(Path.Combine(_folder, "shape.bin"), new long[] { 1, -1 }.SelectMany(BitConverter.GetBytes).ToArray());
        File.WriteAllText(Path.Combine(_folder, "model.txt"),
            "reshape:Reshape*input:ids(1,3);shape.bin(int64:2)*output:flat()\n" +
            "gather:Gather*input:table.bin(float32:10,4);flat()*output:embedded()*axis:0\n" +
            "shape:Shape*input:embedded()*output:dims()\n" +
            "sigmoid:Sigmoid*input:embedded()*output:y()\n");
        var graph = ModelLoader.Load(_folder);
        var outputs = graph.Nodes.SelectMany(n => n.Outputs).ToDictionary(o => o.Name);
        Assert.That(outputs["flat"].Shape, Is.EqualTo(new[] { 1, 3 }));
        Assert.That(outputs["flat"].ActivationType, Is.EqualTo(ElementType.Int64), "ids are indices: int64");
        Assert.That(outputs["embedded"].Shape, Is.EqualTo(new[] { 1, 3, 4 }));
        Assert.That(outputs["y"].Shape, Is.EqualTo(new[] { 1, 3, 4 }));
        Assert.That(outputs.Values, Has.All.Matches<TensorDescriptor>(d => d.HasStaticShape));
    }

    /// <summary>
    /// Every tiny-sd15 form: inference leaves no shape unknown (the unsimplified exports' GroupNorm Shape
    /// chains and the timestep's Where(Equal(ConstantOfShape)) fold away), and the schedule's peak predicted from the inferred shapes
    /// agrees with the peak a run measures.
    /// </summary>
    [TestCaseSource(typeof(TinySd15Tests), nameof(TinySd15Tests.Forms))]
    public void Tiny_sd15_shapes_are_all_inferred_and_predict_the_run_peak(TinySd15Tests.Form form)
    {
        var path = SharedFixtures.Require($"models/tiny-sd15/{form.Model}");
        var graph = ModelLoader.Load(path);
        var summary = ModelSummary.Of(graph);
        Assert.That(summary.UnknownShapes, Is.Zero);
        Assert.That(graph.Nodes.Select(n => n.OpType), Has.None.AnyOf("Shape", "ConstantOfShape", "Equal", "Where"));

        var measured = TinySd15Tests.MeasurePeak(form, graph);
        TestContext.Out.WriteLine($"{form.Model}: {graph.Nodes.Count} nodes; predicted peak {summary.PeakScheduleBytes} bytes, measured {measured}");
        Assert.That(Math.Abs(summary.PeakScheduleBytes - measured), Is.LessThanOrEqualTo(0.1 * measured + (256 << 10)));
    }
}
