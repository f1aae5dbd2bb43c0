using System.Globalization;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OrtSession = Microsoft.ML.OnnxRuntime.InferenceSession;

namespace OnnxStream.Tests.Operators;

/// <summary>An input of a one-node test graph. Data: float[], Half[], long[], int[], byte[] or bool[].</summary>
internal sealed record TestInput(string Name, ElementType Type, int[] Shape, Array Data)
{
    public static TestInput Floats(string name, int[] shape, int seed, float min = -1, float max = 1) =>
        new(name, ElementType.Float32, shape, OperatorTestHarness.RandomFloats((int)OnnxStream.Kernels.Shapes.ElementCount(shape), seed, min, max));

    public static TestInput Int64s(string name, params long[] values) => new(name, ElementType.Int64, [values.Length], values);
}

/// <summary>Attributes of a test node, kept both as ONNX AttributeProtos and in model.txt text form.</summary>
internal sealed class TestAttributes
{
    internal List<AttributeProto> Protos { get; } = [];
    internal Dictionary<string, string> Text { get; } = [];

    public TestAttributes Int(string name, long value) =>
        Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value }, value.ToString(CultureInfo.InvariantCulture));

    public TestAttributes Ints(string name, params long[] values)
    {
        var proto = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        proto.Ints.AddRange(values);
        return Add(proto, string.Join(',', values.Select(v => v.ToString(CultureInfo.InvariantCulture))));
    }

    public TestAttributes Float(string name, float value) =>
        Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value }, value.ToString("R", CultureInfo.InvariantCulture));

    public TestAttributes Floats(string name, params float[] values)
    {
        var proto = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Floats };
        proto.Floats.AddRange(values);
        return Add(proto, string.Join(',', values.Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
    }

    public TestAttributes String(string name, string value) =>
        Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) }, value);

    private TestAttributes Add(AttributeProto proto, string text)
    {
        Protos.Add(proto);
        Text[proto.Name] = text;
        return this;
    }
}

/// <summary>Runs one-node graphs in ONNX Runtime (the oracle) and in OnnxStream, and compares the outputs.</summary>
internal static class OperatorTestHarness
{
    public static float[] RandomFloats(int count, int seed, float min = -1, float max = 1) =>
        Kernels.Reference.RandomFloats(count, seed, min, max);

    public static void AssertMatchesOrt(string opType, IReadOnlyList<TestInput?> inputs, TestAttributes? attributes = null,
        int outputCount = 1, double relative = 1e-5, double absolute = 1e-6, int opset = 17)
    {
        attributes ??= new TestAttributes();
        var expected = RunOrt(opType, inputs, attributes, outputCount, opset);
        foreach (var threads in new[] { 1, 2 })
        {
            var actual = RunOnnxStream(opType, inputs, attributes, outputCount, threads);
            for (var i = 0; i < outputCount; i++)
            {
                var (eType, eShape, eValues) = expected[i];
                var (aType, aShape, aValues) = actual[i];
                var what = $"{opType} output {i} (threads {threads})";
                Assert.That(aType, Is.EqualTo(eType), $"{what}: element type");
                Assert.That(aShape, Is.EqualTo(eShape), $"{what}: shape");
                for (var j = 0; j < eValues.Length; j++)
                {
                    var tolerance = absolute + relative * Math.Abs(eValues[j]);
                    var same = double.IsNaN(eValues[j]) ? double.IsNaN(aValues[j]) : Math.Abs(aValues[j] - eValues[j]) <= tolerance || aValues[j] == eValues[j];
                    if (!same) Assert.Fail($"{what}: element {j} is {aValues[j]}, ORT says {eValues[j]} (tolerance {tolerance:G3})");
                }
            }
        }
    }

    public static void AssertRejected(string opType, IReadOnlyList<TestInput?> inputs, TestAttributes? attributes, string messagePart,
        int outputCount = 1)
    {
        var error = Assert.Throws<OnnxStream.Operators.OperatorException>(() => RunOnnxStream(opType, inputs, attributes ?? new TestAttributes(), outputCount, 1));
        Assert.That(error!.Message, Does.Contain(messagePart));
    }

    /// <summary>Runs the node in OnnxStream; returns each output's type, shape and values as doubles.</summary>
    internal static List<(ElementType, int[], double[])> RunOnnxStream(string opType, IReadOnlyList<TestInput?> inputs,
        TestAttributes attributes, int outputCount, int threads)
    {
        var node = new GraphNode("node", opType,
            inputs.Select(i => i is null ? null : new TensorDescriptor(i.Name, i.Shape)).ToArray(),
            Enumerable.Range(0, outputCount).Select(k => new TensorDescriptor($"output{k}", [])).ToArray(),
            new NodeAttributes(new Dictionary<string, string>(attributes.Text)), "test");
        var graph = GraphBuilder.Build("test", [node]);
        using var session = new OnnxStream.Runtime.InferenceSession(graph, new InferenceSessionOptions { Threads = threads, WeightsProvider = WeightsProviderKind.NoCache });
        var tensors = inputs.Where(i => i is not null).ToDictionary(i => i!.Name, i => ToTensor(i!, session.Allocator));
        try
        {
            using var result = session.Run(tensors);
            return Enumerable.Range(0, outputCount).Select(k =>
            {
                var t = result.Outputs[$"output{k}"];
                return (t.ElementType, t.Shape, ToDoubles(t));
            }).ToList();
        }
        finally
        {
            foreach (var tensor in tensors.Values) tensor.Dispose();
            Assert.That(session.Allocator.LiveBlocks, Is.Zero, "the session leaked tensors");
        }
    }

    internal static List<(ElementType, int[], double[])> RunOrt(string opType, IReadOnlyList<TestInput?> inputs,
        TestAttributes attributes, int outputCount, int opset)
    {
        var node = new NodeProto { OpType = opType, Name = "node" };
        node.Input.AddRange(inputs.Select(i => i?.Name ?? ""));
        node.Output.AddRange(Enumerable.Range(0, outputCount).Select(k => $"output{k}"));
        node.Attribute.AddRange(attributes.Protos);
        var graph = new GraphProto { Name = "test", Node = { node } };
        foreach (var input in inputs.Where(i => i is not null))
        {
            var shape = new TensorShapeProto();
            shape.Dim.AddRange(input!.Shape.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
            graph.Input.Add(new ValueInfoProto
            {
                Name = input.Name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = OnnxType(input.Type), Shape = shape } },
            });
        }
        graph.Output.AddRange(Enumerable.Range(0, outputCount).Select(k => new ValueInfoProto { Name = $"output{k}" }));
        var model = new ModelProto { IrVersion = 8, Graph = graph, OpsetImport = { new OperatorSetIdProto { Domain = "", Version = opset } } };

        using var session = new OrtSession(model.ToByteArray());
        var names = inputs.Where(i => i is not null).Select(i => i!.Name).ToArray();
        var values = inputs.Where(i => i is not null).Select(i => ToOrtValue(i!)).ToArray();
        try
        {
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, names, values, Enumerable.Range(0, outputCount).Select(k => $"output{k}").ToArray());
            return outputs.Select(FromOrtValue).ToList();
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }

    private static Tensor ToTensor(TestInput input, Memory.NativeAllocator allocator)
    {
        var tensor = Tensor.Allocate(input.Type, input.Shape, allocator);
        var bytes = input.Data switch
        {
            bool[] b => b.Select(v => v ? (byte)1 : (byte)0).ToArray(),
            _ => ToBytes(input.Data),
        };
        if (bytes.Length != tensor.ByteCount) Assert.Fail($"test input '{input.Name}' has {bytes.Length} bytes of data for {tensor}");
        bytes.CopyTo(tensor.Bytes);
        return tensor;
    }

    private static byte[] ToBytes(Array data)
    {
        var bytes = new byte[System.Runtime.InteropServices.Marshal.SizeOf(data.GetType().GetElementType()!) * data.Length];
        Buffer.BlockCopy(data is Half[] h ? h.Select(BitConverter.HalfToUInt16Bits).ToArray() : data, 0, bytes, 0, bytes.Length);
        return bytes;
    }

    private static OrtValue ToOrtValue(TestInput input)
    {
        var shape = input.Shape.Select(d => (long)d).ToArray();
        return input.Data switch
        {
            float[] f => OrtValue.CreateTensorValueFromMemory(f, shape),
            Half[] h => OrtValue.CreateTensorValueFromMemory(h.Select(v => new Float16(BitConverter.HalfToUInt16Bits(v))).ToArray(), shape),
            long[] l => OrtValue.CreateTensorValueFromMemory(l, shape),
            int[] i => OrtValue.CreateTensorValueFromMemory(i, shape),
            byte[] b => OrtValue.CreateTensorValueFromMemory(b, shape),
            bool[] b => OrtValue.CreateTensorValueFromMemory(b, shape),
            _ => throw new NotSupportedException(input.Data.GetType().Name),
        };
    }

    private static (ElementType, int[], double[]) FromOrtValue(OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        var shape = info.Shape.Select(d => (int)d).ToArray();
        return info.ElementDataType switch
        {
            Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float => (ElementType.Float32, shape, value.GetTensorDataAsSpan<float>().ToArray().Select(v => (double)v).ToArray()),
            Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16 => (ElementType.Float16, shape, value.GetTensorDataAsSpan<Float16>().ToArray().Select(v => (double)(float)BitConverter.UInt16BitsToHalf(v.value)).ToArray()),
            Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int64 => (ElementType.Int64, shape, value.GetTensorDataAsSpan<long>().ToArray().Select(v => (double)v).ToArray()),
            Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int32 => (ElementType.Int32, shape, value.GetTensorDataAsSpan<int>().ToArray().Select(v => (double)v).ToArray()),
            Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.UInt8 => (ElementType.UInt8, shape, value.GetTensorDataAsSpan<byte>().ToArray().Select(v => (double)v).ToArray()),
            Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Bool => (ElementType.Bool, shape, value.GetTensorDataAsSpan<bool>().ToArray().Select(v => v ? 1.0 : 0.0).ToArray()),
            var other => throw new NotSupportedException($"ORT output type {other}"),
        };
    }

    private static double[] ToDoubles(Tensor t) => t.ElementType switch
    {
        ElementType.Float32 => t.Span<float>().ToArray().Select(v => (double)v).ToArray(),
        ElementType.Float16 => t.Span<Half>().ToArray().Select(v => (double)v).ToArray(),
        ElementType.Int64 => t.Span<long>().ToArray().Select(v => (double)v).ToArray(),
        ElementType.Int32 => t.Span<int>().ToArray().Select(v => (double)v).ToArray(),
        _ => t.Span<byte>().ToArray().Select(v => (double)v).ToArray(),
    };

    private static int OnnxType(ElementType type) => (int)(type switch
    {
        ElementType.Float32 => TensorProto.Types.DataType.Float,
        ElementType.Float16 => TensorProto.Types.DataType.Float16,
        ElementType.Int64 => TensorProto.Types.DataType.Int64,
        ElementType.Int32 => TensorProto.Types.DataType.Int32,
        ElementType.UInt8 => TensorProto.Types.DataType.Uint8,
        _ => TensorProto.Types.DataType.Bool,
    });
}
