using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace OnnxStream.Tests.Graph.OnnxFormat;

/// <summary>Builds small .onnx files with the generated ONNX classes.</summary>
internal sealed class OnnxTestModel
{
    public GraphProto Graph { get; } = new() { Name = "test" };
    public long OpsetVersion { get; set; } = 14;

    public OnnxTestModel Input(string name, params long[] dims) => Value(Graph.Input, name, TensorProto.Types.DataType.Float, dims);

    public OnnxTestModel Output(string name, params long[] dims) => Value(Graph.Output, name, TensorProto.Types.DataType.Float, dims);

    public OnnxTestModel TypedInput(string name, TensorProto.Types.DataType type, params long[] dims) => Value(Graph.Input, name, type, dims);

    public OnnxTestModel TypedOutput(string name, TensorProto.Types.DataType type, params long[] dims) => Value(Graph.Output, name, type, dims);

    public OnnxTestModel ValueInfo(string name, params long[] dims) => Value(Graph.ValueInfo, name, TensorProto.Types.DataType.Float, dims);

    private OnnxTestModel Value(Google.Protobuf.Collections.RepeatedField<ValueInfoProto> list, string name, TensorProto.Types.DataType type, long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
            shape.Dim.Add(dim < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "N" } : new TensorShapeProto.Types.Dimension { DimValue = dim });
        list.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } });
        return this;
    }

    public OnnxTestModel Node(string opType, string[] inputs, string[] outputs, string name = "", params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return this;
    }

    public OnnxTestModel Initializer(TensorProto tensor)
    {
        Graph.Initializer.Add(tensor);
        return this;
    }

    public static TensorProto Raw<T>(string name, T[] values, TensorProto.Types.DataType type, params long[] dims) where T : unmanaged
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    public static TensorProto Floats(string name, float[] values, params long[] dims) => Raw(name, values, TensorProto.Types.DataType.Float, dims);

    public static TensorProto Int64s(string name, long[] values, params long[] dims) => Raw(name, values, TensorProto.Types.DataType.Int64, dims);

    /// <summary>A float tensor whose data is bytes <paramref name="offset"/>.. of the external data file <paramref name="location"/>.</summary>
    public static TensorProto External(string name, string location, long offset, long length, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        tensor.Dims.AddRange(dims);
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return tensor;
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    public static AttributeProto Tensor(string name, TensorProto value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };

    public ModelProto ToModel()
    {
        var model = new ModelProto { IrVersion = 8, ProducerName = "OnnxStream.Tests", Graph = Graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OpsetVersion });
        return model;
    }

    public string Save(string folder, string fileName = "model.onnx")
    {
        var path = Path.Combine(folder, fileName);
        File.WriteAllBytes(path, ToModel().ToByteArray());
        return path;
    }
}
