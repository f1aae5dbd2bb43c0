using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using OnnxStream.Graph;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxStream.Tests.Graph.OnnxFormat;

/// <summary>A 300 MB .onnx loads in a few managed megabytes: the weight's bytes are located, not read.</summary>
internal sealed class LargeOnnxModelTests
{
    private const int Rows = 7_500, Columns = 10_000; // 75M floats, 300 MB

    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-large-onnx-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void A_300_MB_model_loads_in_less_than_5_MB()
    {
        var path = Path.Combine(_folder, "large.onnx");
        var rawOffset = WriteLargeModel(path);
        Assert.That(new FileInfo(path).Length, Is.GreaterThan(300_000_000L));

        // Warm up statics (JIT, protobuf parsers, the operator registry) on a small model first.
        var small = new OnnxTestModel().Input("x", 1, 2).Output("y", 1, 3);
        small.Initializer(OnnxTestModel.Floats("w", new float[6], 2, 3)).Node("MatMul", ["x", "w"], ["y"], "matmul");
        ModelLoader.Load(small.Save(_folder, "small.onnx"));

        var before = GC.GetAllocatedBytesForCurrentThread();
        var graph = ModelLoader.Load(path);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        TestContext.Out.WriteLine($"loading a {new FileInfo(path).Length / 1048576} MiB model allocated {allocated / 1024} KiB");

        Assert.That(allocated, Is.LessThan(5L << 20));
        var weight = graph.Nodes.Single().Inputs[1]!;
        Assert.That(weight.Shape, Is.EqualTo(new[] { Rows, Columns }));
        Assert.That(weight.Location!.Inline, Is.Null);
        Assert.That(weight.Location.Path, Is.EqualTo(path));
        Assert.That(weight.Location.Offset, Is.EqualTo(rawOffset));
        Assert.That(weight.Location.Length, Is.EqualTo(4L * Rows * Columns));

        // Spot-check the values where the location says they are.
        using var file = File.OpenHandle(path);
        var value = new byte[4];
        foreach (var index in new long[] { 0, 1, 12_345_678, (long)Rows * Columns - 1 })
        {
            RandomAccess.Read(file, value, weight.Location.Offset + index * 4);
            Assert.That(BitConverter.ToSingle(value), Is.EqualTo(ValueAt(index)), $"element {index}");
        }
    }

    private static float ValueAt(long index) => index % 1000 * 0.5f;

    /// <summary>
    /// ModelProto { ir_version, opset_import, graph { node MatMul(x, w), initializer w (raw_data streamed
    /// from a small buffer), input x, output y } }, written field by field; returns the raw data's offset.
    /// </summary>
    private static long WriteLargeModel(string path)
    {
        var graphHead = new GraphProto { Name = "large" };
        graphHead.Node.Add(new NodeProto { Name = "matmul", OpType = "MatMul", Input = { "x", "w" }, Output = { "y" } });
        var graphTail = new GraphProto();
        graphTail.Input.Add(ValueInfo("x", 1, Rows));
        graphTail.Output.Add(ValueInfo("y", 1, Columns));

        var tensorHead = new TensorProto { Name = "w", DataType = (int)DataType.Float, Dims = { Rows, Columns } }.ToByteArray();
        var rawLength = 4L * Rows * Columns;
        var tensorLength = tensorHead.Length + 1 + Varint(rawLength).Length + rawLength;
        var graphHeadBytes = graphHead.ToByteArray();
        var graphTailBytes = graphTail.ToByteArray();
        var graphLength = graphHeadBytes.Length + 1 + Varint(tensorLength).Length + tensorLength + graphTailBytes.Length;
        var modelHead = new ModelProto { IrVersion = 8, OpsetImport = { new OperatorSetIdProto { Domain = "", Version = 14 } } }.ToByteArray();

        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        stream.Write(modelHead);
        stream.WriteByte((7 << 3) | 2); // ModelProto.graph
        stream.Write(Varint(graphLength));
        stream.Write(graphHeadBytes);
        stream.WriteByte((5 << 3) | 2); // GraphProto.initializer
        stream.Write(Varint(tensorLength));
        stream.Write(tensorHead);
        stream.WriteByte((9 << 3) | 2); // TensorProto.raw_data
        stream.Write(Varint(rawLength));
        var rawOffset = stream.Position;
        var chunk = new float[1 << 16];
        for (long written = 0; written < Rows * (long)Columns; written += chunk.Length)
        {
            var count = (int)Math.Min(chunk.Length, Rows * (long)Columns - written);
            for (var i = 0; i < count; i++) chunk[i] = ValueAt(written + i);
            stream.Write(MemoryMarshal.AsBytes(chunk.AsSpan(0, count)));
        }
        stream.Write(graphTailBytes);
        return rawOffset;
    }

    private static byte[] Varint(long value)
    {
        var bytes = new List<byte>();
        var v = (ulong)value;
        do
        {
            var b = (byte)(v & 0x7F);
            v >>= 7;
            bytes.Add(v != 0 ? (byte)(b | 0x80) : b);
        } while (v != 0);
        return bytes.ToArray();
    }

    private static ValueInfoProto ValueInfo(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dim });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float, Shape = shape } } };
    }
}
