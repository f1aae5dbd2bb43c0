using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using OnnxStream.Graph;
using OnnxStream.Graph.OnnxFormat;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Weights;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxStream.Tests.Graph.OnnxFormat;

internal sealed class OnnxModelReaderTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-onnx-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    private static byte[] ReadWeight(TensorDescriptor weight)
    {
        using var tensor = WeightFileReader.Read(weight, new NativeAllocator());
        return tensor.Bytes.ToArray();
    }

    private static byte[] Bytes<T>(params T[] values) where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static TensorDescriptor WeightInput(ModelGraph graph, string name) =>
        graph.Nodes.SelectMany(n => n.Inputs).First(i => i is not null && i.Name == name)!;

    /// <summary>A node that takes every initializer, so each becomes a weight (the op need not exist to load).</summary>
    private static OnnxTestModel Consuming(params TensorProto[] initializers)
    {
        var model = new OnnxTestModel().Input("x", 1).Output("y", 1);
        foreach (var initializer in initializers) model.Initializer(initializer);
        return model.Node("TakeAll", ["x", .. initializers.Select(i => i.Name)], ["y"], "take");
    }

    [Test]
    public void Initializers_point_at_their_raw_data_in_the_file_and_typed_fields_are_converted()
    {
        float[] floats = [1.5f, -2, 3.25f, 4, 5, 6];
        var floatData = new TensorProto { Name = "float_data", DataType = (int)DataType.Float, Dims = { 2, 2 } };
        floatData.FloatData.AddRange([7f, 8f, 9f, 10.5f]);
        var int64Data = new TensorProto { Name = "int64_data", DataType = (int)DataType.Int64, Dims = { 3 } };
        int64Data.Int64Data.AddRange([-1L, 0L, 1L << 40]);
        var int32Data = new TensorProto { Name = "int32_data", DataType = (int)DataType.Int32, Dims = { 2 } };
        int32Data.Int32Data.AddRange([-5, 6]);
        var halfData = new TensorProto { Name = "half_data", DataType = (int)DataType.Float16, Dims = { 2 } };
        halfData.Int32Data.AddRange([BitConverter.HalfToUInt16Bits((Half)1.5f), BitConverter.HalfToUInt16Bits((Half)(-3f))]);
        var boolData = new TensorProto { Name = "bool_data", DataType = (int)DataType.Bool, Dims = { 3 } };
        boolData.Int32Data.AddRange([1, 0, 1]);
        var doubleData = new TensorProto { Name = "double_data", DataType = (int)DataType.Double, Dims = { 2 } };
        doubleData.DoubleData.AddRange([0.25, -8.5]);
        var path = Consuming(
            OnnxTestModel.Floats("raw_float", floats, 2, 3),
            OnnxTestModel.Raw("raw_half", [(Half)0.5f, (Half)2f], DataType.Float16, 2),
            OnnxTestModel.Int64s("raw_int64", [3L, -4L], 2),
            OnnxTestModel.Raw("raw_uint8", new byte[] { 1, 2, 255 }, DataType.Uint8, 3),
            OnnxTestModel.Raw("raw_double", [1.25, -0.5], DataType.Double, 2),
            OnnxTestModel.Floats("scalar", [42f]),
            floatData, int64Data, int32Data, halfData, boolData, doubleData).Save(_folder);

        var graph = ModelLoader.Load(path);

        Assert.That(graph.Source, Is.EqualTo(path));
        var node = graph.Nodes.Single();
        Assert.That(node.Source, Is.EqualTo("model.onnx node #0 'take'"));
        Assert.That(node.Inputs[0]!.IsWeight, Is.False);
        var expected = new (string Name, ElementType Type, int[] Shape, byte[] Bytes, bool InFile)[]
        {
            ("raw_float", ElementType.Float32, [2, 3], Bytes(floats), true),
            ("raw_half", ElementType.Float16, [2], Bytes((Half)0.5f, (Half)2f), true),
            ("raw_int64", ElementType.Int64, [2], Bytes(3L, -4L), true),
            ("raw_uint8", ElementType.UInt8, [3], [1, 2, 255], true),
            ("raw_double", ElementType.Float32, [2], Bytes(1.25f, -0.5f), false),
            ("scalar", ElementType.Float32, [], Bytes(42f), true),
            ("float_data", ElementType.Float32, [2, 2], Bytes(7f, 8f, 9f, 10.5f), true), // one packed field: used in place
            ("int64_data", ElementType.Int64, [3], Bytes(-1L, 0L, 1L << 40), false),
            ("int32_data", ElementType.Int32, [2], Bytes(-5, 6), false),
            ("half_data", ElementType.Float16, [2], Bytes((Half)1.5f, (Half)(-3f)), false),
            ("bool_data", ElementType.Bool, [3], [1, 0, 1], false),
            ("double_data", ElementType.Float32, [2], Bytes(0.25f, -8.5f), false),
        };
        var fileBytes = File.ReadAllBytes(path);
        foreach (var (name, type, shape, bytes, inFile) in expected)
        {
            var weight = WeightInput(graph, name);
            Assert.That(weight.WeightType, Is.EqualTo(type), name);
            Assert.That(weight.Shape, Is.EqualTo(shape), name);
            Assert.That(ReadWeight(weight), Is.EqualTo(bytes), name);
            Assert.That(weight.Location!.Inline is null, Is.EqualTo(inFile), $"{name}: read from the file rather than inline");
            if (inFile)
            {
                Assert.That(weight.Location.Path, Is.EqualTo(path));
                Assert.That(fileBytes.AsSpan((int)weight.Location.Offset, (int)weight.Location.Length).ToArray(), Is.EqualTo(bytes), name);
            }
        }
    }

    [Test]
    public void External_data_points_into_the_side_file()
    {
        float[] values = [1, 2, 3, 4, 5, 6];
        var side = new byte[16 + 24 + 8];
        Bytes(values).CopyTo(side, 16);
        File.WriteAllBytes(Path.Combine(_folder, "weights.bin"), side);
        var path = Consuming(OnnxTestModel.External("w", "weights.bin", 16, 24, 2, 3)).Save(_folder);

        var weight = WeightInput(ModelLoader.Load(path), "w");

        Assert.That(weight.Location!.Path, Is.EqualTo(Path.Combine(_folder, "weights.bin")));
        Assert.That(weight.Location.Offset, Is.EqualTo(16));
        Assert.That(weight.Location.Length, Is.EqualTo(24));
        Assert.That(ReadWeight(weight), Is.EqualTo(Bytes(values)));
    }

    [Test]
    public void A_missing_or_short_external_file_is_an_error_naming_the_file_and_tensor()
    {
        var path = Consuming(OnnxTestModel.External("the_weight", "absent.bin", 0, 24, 2, 3)).Save(_folder);
        var missing = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(path))!;
        Assert.That(missing.Message, Does.Contain(Path.Combine(_folder, "absent.bin")).And.Contain("the_weight").And.Contain("missing"));

        File.WriteAllBytes(Path.Combine(_folder, "short.bin"), new byte[30]);
        path = Consuming(OnnxTestModel.External("short_weight", "short.bin", 8, 24, 2, 3)).Save(_folder);
        var shortFile = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(path))!;
        Assert.That(shortFile.Message, Does.Contain(Path.Combine(_folder, "short.bin")).And.Contain("short_weight").And.Contain("30 bytes"));
    }

    [Test]
    public void Malformed_truncated_and_unsupported_files_are_errors()
    {
        var path = Consuming(OnnxTestModel.Floats("w", new float[1000], 1000)).Save(_folder);
        var bytes = File.ReadAllBytes(path);

        var truncatedPath = Path.Combine(_folder, "truncated.onnx");
        File.WriteAllBytes(truncatedPath, bytes[..(bytes.Length / 2)]);
        var truncated = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(truncatedPath))!;
        Assert.That(truncated.Message, Does.Contain(truncatedPath).And.Contain("truncated"));

        var garbagePath = Path.Combine(_folder, "garbage.onnx");
        File.WriteAllBytes(garbagePath, [0x0F, 0xFF, 0xFF, 0x00, 0x07]);
        Assert.That(() => ModelLoader.Load(garbagePath), Throws.TypeOf<ModelFormatException>().With.Message.Contain(garbagePath));

        var emptyPath = Path.Combine(_folder, "empty.onnx");
        File.WriteAllBytes(emptyPath, []);
        Assert.That(() => ModelLoader.Load(emptyPath), Throws.TypeOf<ModelFormatException>().With.Message.Contain("no graph"));

        var int8Path = Consuming(OnnxTestModel.Raw("int8_weight", new sbyte[] { 1, -1 }, DataType.Int8, 2)).Save(_folder, "int8.onnx");
        Assert.That(() => ModelLoader.Load(int8Path),
            Throws.TypeOf<ModelFormatException>().With.Message.Contain("int8_weight").And.Message.Contain("INT8"));

        var shortRaw = OnnxTestModel.Floats("short_raw", [1f, 2f], 3);
        var shortRawPath = Consuming(shortRaw).Save(_folder, "short_raw.onnx");
        Assert.That(() => ModelLoader.Load(shortRawPath),
            Throws.TypeOf<ModelFormatException>().With.Message.Contain("short_raw").And.Message.Contain("8 bytes"));
    }

    [Test]
    public void Other_domains_and_dangling_inputs_are_errors_naming_the_node()
    {
        var model = new OnnxTestModel().Input("x", 2).Output("y", 2);
        model.Node("FusedThing", ["x"], ["y"], "fused");
        model.Graph.Node[0].Domain = "com.microsoft";
        var path = model.Save(_folder);
        Assert.That(() => ModelLoader.Load(path),
            Throws.TypeOf<ModelFormatException>().With.Message.Contain("'fused'").And.Message.Contain("com.microsoft"));

        path = new OnnxTestModel().Input("x", 2).Output("y", 2).Node("Add", ["x", "nowhere"], ["y"], "add").Save(_folder);
        Assert.That(() => ModelLoader.Load(path),
            Throws.TypeOf<ModelFormatException>().With.Message.Contain("'add'").And.Message.Contain("nowhere"));
    }

    [Test]
    public void Attributes_become_the_model_txt_text_form()
    {
        var path = new OnnxTestModel().Input("x", 1).Output("y", 1)
            .Node("Custom", ["x"], ["y"], "", OnnxTestModel.Int("axis", -1), OnnxTestModel.Ints("pads", 1, 0, -2),
                new AttributeProto { Name = "eps", Type = AttributeProto.Types.AttributeType.Float, F = 1e-5f },
                new AttributeProto { Name = "scales", Type = AttributeProto.Types.AttributeType.Floats, Floats = { 0.5f, 2f } },
                new AttributeProto { Name = "mode", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8("nearest") },
                OnnxTestModel.Tensor("value", OnnxTestModel.Int64s("", [7L], 1)),
                new AttributeProto { Name = "untyped", I = 3 }) // old models leave the type out
            .Save(_folder);

        var node = ModelLoader.Load(path).Nodes.Single();

        Assert.That(node.Name, Is.EqualTo("Custom_0"), "an empty name is invented as OpType_index");
        var attributes = node.Attributes;
        Assert.That(attributes.GetInt("axis", 0), Is.EqualTo(-1));
        Assert.That(attributes.GetInts("pads"), Is.EqualTo(new long[] { 1, 0, -2 }));
        Assert.That(attributes.GetFloat("eps", 0), Is.EqualTo(1e-5f));
        Assert.That(attributes.GetString("scales", ""), Is.EqualTo("0.5,2.0"), "floats as Python writes them");
        Assert.That(attributes.GetString("mode", ""), Is.EqualTo("nearest"));
        Assert.That(attributes.GetString("value", ""), Is.EqualTo("7"));
        Assert.That(attributes.GetString("value.dtype", ""), Is.EqualTo("int64"));
        Assert.That(attributes.GetInt("untyped", 0), Is.EqualTo(3));
    }

    [Test]
    public void Constant_nodes_become_weights_and_empty_constants_omitted_inputs()
    {
        var model = new OnnxTestModel().Input("x", 2, 3).Output("y", 2, 3);
        model.Node("Constant", [], ["c"], "const", OnnxTestModel.Tensor("value", OnnxTestModel.Floats("", [1, 2, 3], 3)));
        model.Node("Constant", [], ["i"], "", new AttributeProto { Name = "value_ints", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 4, 5 } });
        model.Node("Constant", [], ["f"], "", new AttributeProto { Name = "value_float", Type = AttributeProto.Types.AttributeType.Float, F = 0.5f });
        model.Node("Constant", [], ["empty"], "", OnnxTestModel.Tensor("value", OnnxTestModel.Floats("", [], 0)));
        model.Node("Custom", ["x", "c", "i", "f", "empty"], ["y"], "use");
        var graph = ModelLoader.Load(model.Save(_folder));

        var node = graph.Nodes.Single();
        Assert.That(node.OpType, Is.EqualTo("Custom"));
        Assert.That(node.Source, Is.EqualTo("model.onnx node #4 'use'"));
        Assert.That(ReadWeight(node.Inputs[1]!), Is.EqualTo(Bytes(1f, 2f, 3f)));
        Assert.That(node.Inputs[1]!.Location!.Inline, Is.Not.Null);
        Assert.That(node.Inputs[2]!.WeightType, Is.EqualTo(ElementType.Int64));
        Assert.That(ReadWeight(node.Inputs[2]!), Is.EqualTo(Bytes(4L, 5L)));
        Assert.That(node.Inputs[3]!.Shape, Is.Empty);
        Assert.That(ReadWeight(node.Inputs[3]!), Is.EqualTo(Bytes(0.5f)));
        Assert.That(node.Inputs[4], Is.Null, "an empty constant is an omitted input (as the original converter writes it)");
    }

    [Test]
    public void A_large_constant_node_stays_in_the_file()
    {
        var values = Enumerable.Range(0, 40_000).Select(i => (float)i).ToArray(); // 160 KB: the node is streamed
        var model = new OnnxTestModel().Input("x", 40_000).Output("y", 40_000);
        model.Node("Constant", [], ["big"], "big_constant", OnnxTestModel.Tensor("value", OnnxTestModel.Floats("", values, 40_000)));
        model.Node("Add", ["x", "big"], ["y"], "add");
        var path = model.Save(_folder);

        var weight = ModelLoader.Load(path).Nodes.Single().Inputs[1]!;

        Assert.That(weight.Location!.Inline, Is.Null);
        Assert.That(weight.Location.Path, Is.EqualTo(path));
        Assert.That(ReadWeight(weight), Is.EqualTo(Bytes(values)));
    }

    [Test]
    public void Identity_and_inference_Dropout_are_removed_and_graph_output_names_kept()
    {
        var model = new OnnxTestModel().Input("x", 2).Output("y", 2).Output("z", 2);
        model.Initializer(OnnxTestModel.Floats("w", [1, 2], 2));
        model.Node("Identity", ["x"], ["x1"], "id1");
        model.Node("Dropout", ["x1"], ["x2", "mask"], "drop"); // mask unused
        model.Node("Add", ["x2", "w"], ["sum"], "add");
        model.Node("Identity", ["sum"], ["y"], "id_to_output"); // a graph output: the Add is renamed to produce 'y'
        model.Node("Mul", ["y", "w"], ["m"], "mul");
        model.Node("Identity", ["m"], ["z"], "id_to_output2");
        var graph = ModelLoader.Load(model.Save(_folder));

        Assert.That(graph.Nodes.Select(n => n.OpType), Is.EqualTo(new[] { "Add", "Mul" }));
        Assert.That(graph.Nodes[0].Inputs[0]!.Name, Is.EqualTo("x"));
        Assert.That(graph.Nodes[0].Outputs.Select(o => o.Name), Is.EqualTo(new[] { "y" }));
        Assert.That(graph.Nodes[1].Inputs[0]!.Name, Is.EqualTo("y"));
        Assert.That(graph.Nodes[1].Outputs.Select(o => o.Name), Is.EqualTo(new[] { "z" }));
        Assert.That(graph.Inputs.Select(i => i.Name), Is.EqualTo(new[] { "x" }));
        Assert.That(graph.Outputs.Select(o => o.Name), Is.EqualTo(new[] { "y", "z" }));

        using var session = new InferenceSession(graph, new InferenceSessionOptions { Threads = 1 });
        using var x = Tensor.From<float>([10f, 20f], [2]);
        using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = x });
        Assert.That(result.Outputs["y"].Span<float>().ToArray(), Is.EqualTo(new[] { 11f, 22f }));
        Assert.That(result.Outputs["z"].Span<float>().ToArray(), Is.EqualTo(new[] { 11f, 44f }));
    }

    [Test]
    public void A_Dropout_whose_mask_is_used_stays()
    {
        var model = new OnnxTestModel().Input("x", 2).Output("y", 2).Output("mask", 2);
        model.Node("Dropout", ["x"], ["y", "mask"], "drop");
        Assert.That(ModelLoader.Load(model.Save(_folder)).Nodes.Single().OpType, Is.EqualTo("Dropout"));
    }

    [Test]
    public void Unsorted_nodes_are_sorted_and_cycles_are_errors_naming_a_node()
    {
        var model = new OnnxTestModel().Input("x", 2).Output("y", 2);
        model.Initializer(OnnxTestModel.Floats("w", [1, 2], 2));
        model.Node("Mul", ["a", "w"], ["y"], "second");
        model.Node("Add", ["x", "w"], ["a"], "first");
        var graph = ModelLoader.Load(model.Save(_folder));
        Assert.That(graph.Nodes.Select(n => n.Name), Is.EqualTo(new[] { "first", "second" }));

        var cycle = new OnnxTestModel().Input("x", 2).Output("y", 2);
        cycle.Node("Add", ["x", "b"], ["a"], "one");
        cycle.Node("Add", ["a", "x"], ["b"], "two");
        cycle.Node("Add", ["a", "b"], ["y"], "three");
        var path = cycle.Save(_folder, "cycle.onnx");
        Assert.That(() => ModelLoader.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contain("cycle").And.Message.Contain("'one'"));
    }

    [Test]
    public void A_shape_chain_on_a_static_input_folds_into_a_constant_shape()
    {
        // Reshape(x, Concat(Slice(Shape(x), 0, 1), [-1])): x [2,3,4] → [2,12]. Shape, Slice and Concat fold.
        var model = new OnnxTestModel().Input("x", 2, 3, 4).Output("y", 2, 12);
        model.Initializer(OnnxTestModel.Int64s("zero", [0], 1)).Initializer(OnnxTestModel.Int64s("one", [1], 1))
            .Initializer(OnnxTestModel.Int64s("minus_one", [-1], 1));
        model.Node("Shape", ["x"], ["shape"], "shape");
        model.Node("Slice", ["shape", "zero", "one"], ["batch"], "slice");
        model.Node("Concat", ["batch", "minus_one"], ["target"], "concat", OnnxTestModel.Int("axis", 0));
        model.Node("Reshape", ["x", "target"], ["y"], "reshape");
        var graph = ModelLoader.Load(model.Save(_folder));

        var reshape = graph.Nodes.Single();
        Assert.That(reshape.OpType, Is.EqualTo("Reshape"));
        var target = reshape.Inputs[1]!;
        Assert.That(target.IsWeight && target.Location!.Inline is not null);
        Assert.That(target.WeightType, Is.EqualTo(ElementType.Int64));
        Assert.That(ReadWeight(target), Is.EqualTo(Bytes(2L, -1L)));

        using var session = new InferenceSession(graph, new InferenceSessionOptions { Threads = 1 });
        using var x = Tensor.From<float>(Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), [2, 3, 4]);
        using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = x });
        Assert.That(result.Outputs["y"].Shape, Is.EqualTo(new[] { 2, 12 }));
    }

    [Test]
    public void The_Gather_Unsqueeze_chain_folds_as_far_as_operators_exist()
    {
        // Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])): the usual PyTorch flatten.
        var model = new OnnxTestModel { OpsetVersion = 13 }.Input("x", 2, 3, 4).Output("y", 2, 12);
        model.Initializer(OnnxTestModel.Int64s("index", [0])).Initializer(OnnxTestModel.Int64s("axes", [0], 1))
            .Initializer(OnnxTestModel.Int64s("minus_one", [-1], 1));
        model.Node("Shape", ["x"], ["shape"], "shape");
        model.Node("Gather", ["shape", "index"], ["batch"], "gather", OnnxTestModel.Int("axis", 0));
        model.Node("Unsqueeze", ["batch", "axes"], ["batch1"], "unsqueeze");
        model.Node("Concat", ["batch1", "minus_one"], ["target"], "concat", OnnxTestModel.Int("axis", 0));
        model.Node("Reshape", ["x", "target"], ["y"], "reshape");
        var graph = ModelLoader.Load(model.Save(_folder));

        var registered = (string op) => OperatorRegistry.Default.TryGet(op, out _);
        var expected = new List<string>();
        if (!registered("Gather")) expected.AddRange(["Gather", "Unsqueeze", "Concat"]);
        else if (!registered("Unsqueeze")) expected.AddRange(["Unsqueeze", "Concat"]);
        expected.Add("Reshape");
        TestContext.Out.WriteLine($"left after folding: {string.Join(", ", graph.Nodes.Select(n => n.OpType))}");
        Assert.That(graph.Nodes.Select(n => n.OpType), Is.EqualTo(expected), "Shape always folds; the rest as far as operators exist");
        if (expected.Count == 1) Assert.That(ReadWeight(graph.Nodes[0].Inputs[1]!), Is.EqualTo(Bytes(2L, -1L)));
    }

    [Test]
    public void Arithmetic_on_constants_folds_with_float16_widened_as_the_session_does()
    {
        var model = new OnnxTestModel().Input("x", 2).Output("y", 2);
        model.Initializer(OnnxTestModel.Raw("half", [(Half)1.5f, (Half)(-2f)], DataType.Float16, 2));
        model.Node("Constant", [], ["c"], "", OnnxTestModel.Tensor("value", OnnxTestModel.Floats("", [0.25f, 4f], 2)));
        model.Node("Add", ["half", "c"], ["sum"], "add");
        model.Node("Mul", ["x", "sum"], ["y"], "mul");
        var graph = ModelLoader.Load(model.Save(_folder));

        var mul = graph.Nodes.Single();
        Assert.That(mul.OpType, Is.EqualTo("Mul"));
        Assert.That(mul.Inputs[1]!.Name, Is.EqualTo("sum"));
        Assert.That(mul.Inputs[1]!.WeightType, Is.EqualTo(ElementType.Float32));
        Assert.That(ReadWeight(mul.Inputs[1]!), Is.EqualTo(Bytes(1.75f, 2f)));
    }

    [Test]
    public void A_node_producing_a_graph_output_is_not_folded()
    {
        var model = new OnnxTestModel().Input("x", 2).Output("y", 2).Output("k", 2);
        model.Initializer(OnnxTestModel.Floats("a", [1f, 2f], 2)).Initializer(OnnxTestModel.Floats("b", [3f, 4f], 2));
        model.Node("Add", ["a", "b"], ["k"], "constant_output");
        model.Node("Mul", ["x", "k"], ["y"], "mul");
        var graph = ModelLoader.Load(model.Save(_folder));
        Assert.That(graph.Nodes.Select(n => n.Name), Is.EqualTo(new[] { "constant_output", "mul" }));
    }

    [Test]
    public void An_unregistered_operator_is_left_in_place_and_so_are_its_consumers()
    {
        var model = new OnnxTestModel().Input("x", 2, 3, 4).Output("y", 2, 12);
        model.Initializer(OnnxTestModel.Int64s("zero", [0], 1)).Initializer(OnnxTestModel.Int64s("one", [1], 1))
            .Initializer(OnnxTestModel.Int64s("minus_one", [-1], 1));
        model.Node("Shape", ["x"], ["shape"], "shape");
        model.Node("Slice", ["shape", "zero", "one"], ["batch"], "slice");
        model.Node("Concat", ["batch", "minus_one"], ["target"], "concat", OnnxTestModel.Int("axis", 0));
        model.Node("Reshape", ["x", "target"], ["y"], "reshape");
        var withoutSlice = new OperatorRegistry();
        foreach (var op in OperatorRegistry.Default.OpTypes.Where(op => op != "Slice"))
            withoutSlice.Register(op, OperatorRegistry.Default.TryGet(op, out var implementation) ? implementation : null!);

        var graph = OnnxModelReader.Read(model.Save(_folder), withoutSlice);

        Assert.That(graph.Nodes.Select(n => n.OpType), Is.EqualTo(new[] { "Slice", "Concat", "Reshape" }));
        Assert.That(graph.Nodes[0].Inputs[0]!.IsWeight, "Shape of the static input folded");
    }

    [Test]
    public void Initializer_weights_run_through_a_session()
    {
        var model = new OnnxTestModel().Input("x", 2, 2).Output("y", 2, 2);
        var w = new TensorProto { Name = "w", DataType = (int)DataType.Float, Dims = { 2, 2 } };
        w.FloatData.AddRange([1f, 2f, 3f, 4f]);
        model.Initializer(w).Initializer(OnnxTestModel.Floats("b", [10f, 20f], 2));
        model.Node("Mul", ["x", "w"], ["m"], "mul");
        model.Node("Add", ["m", "b"], ["y"], "add");
        var graph = ModelLoader.Load(model.Save(_folder));

        using var session = new InferenceSession(graph, new InferenceSessionOptions { Threads = 1 });
        using var x = Tensor.From<float>([1f, 1f, 2f, 2f], [2, 2]);
        using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = x });
        Assert.That(result.Outputs["y"].Span<float>().ToArray(), Is.EqualTo(new[] { 11f, 22f, 16f, 28f }));
    }

    [Test]
    public void The_loader_dispatches_on_the_path()
    {
        var onnx = new OnnxTestModel().Input("x", 2).Output("y", 2).Node("Sigmoid", ["x"], ["y"], "sig").Save(_folder);
        Assert.That(ModelLoader.Load(onnx).Nodes.Single().Name, Is.EqualTo("sig"));
        Assert.That(ModelLoader.Load(_folder).Nodes.Single().Name, Is.EqualTo("sig"), "a folder with only model.onnx");

        File.WriteAllText(Path.Combine(_folder, "model.txt"), "txt_sig:Sigmoid*input:x(2)*output:y(2)\n");
        Assert.That(ModelLoader.Load(_folder).Nodes.Single().Name, Is.EqualTo("txt_sig"), "a folder with model.txt");
        Assert.That(ModelLoader.Load(Path.Combine(_folder, "model.txt")).Nodes.Single().Name, Is.EqualTo("txt_sig"));
        Assert.That(() => ModelLoader.Load(Path.Combine(_folder, "absent.onnx")), Throws.TypeOf<FileNotFoundException>());
    }

    [Test]
    public void Declared_shapes_describe_inputs_and_outputs()
    {
        var model = new OnnxTestModel().Input("x", -1, 3).Output("y", -1, 3).ValueInfo("h", 7, 3);
        model.Node("Sigmoid", ["x"], ["h"], "a").Node("Sigmoid", ["h"], ["y"], "b");
        var graph = ModelLoader.Load(model.Save(_folder));

        Assert.That(graph.Inputs.Single().Shape, Is.EqualTo(new[] { 0, 3 }), "dim_param is unknown (0)");
        Assert.That(graph.Nodes[0].Outputs[0].Shape, Is.EqualTo(new[] { 7, 3 }), "value_info");
        Assert.That(graph.Outputs.Single().Shape, Is.EqualTo(new[] { 7, 3 }), "inferred from h's declared shape");
        Assert.That(graph.Outputs.Single().HasStaticShape);
    }
}
