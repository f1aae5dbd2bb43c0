using Onnx;

namespace OnnxStream.Graph.OnnxFormat;

/// <summary>A range of the .onnx file holding one field's payload (packed values, or one unpacked value).</summary>
internal readonly record struct FieldSegment(int Field, WireType Wire, long Offset, long Length);

/// <summary>
/// What a TensorProto says about its data, without the data: name, dims, type, and where the bytes are
/// (a range of the .onnx file, an external file, bytes already in memory, or typed fields).
/// </summary>
internal sealed class TensorRecord
{
    public string Name { get; set; } = "";
    public List<long> Dims { get; } = [];
    public int DataType { get; set; }

    /// <summary>raw_data as a range of the .onnx file (streamed tensors), or -1.</summary>
    public long RawOffset { get; set; } = -1;
    public long RawLength { get; set; }

    /// <summary>raw_data already in memory (tensors of small nodes parsed whole).</summary>
    public byte[]? RawBytes { get; set; }

    public bool IsExternal { get; set; }
    public List<(string Key, string Value)> ExternalData { get; } = [];

    /// <summary>Typed data fields (float_data, int32_data, int64_data, double_data) as ranges of the .onnx file.</summary>
    public List<FieldSegment> Segments { get; } = [];

    /// <summary>A tensor parsed whole: its typed data fields are read from here.</summary>
    public TensorProto? Proto { get; set; }

    public bool HasStrings { get; set; }
    public bool HasSegment { get; set; }

    /// <summary>Where it was read from, for messages (an initializer, or a Constant node's attribute).</summary>
    public Func<string> Origin { get; set; } = () => "a tensor";

    public bool HasRaw => RawOffset >= 0 || RawBytes is not null;

    /// <summary>A record of a TensorProto parsed by the generated classes (its data is in memory).</summary>
    public static TensorRecord FromProto(TensorProto proto, Func<string> origin)
    {
        var record = new TensorRecord
        {
            Name = proto.Name,
            DataType = proto.DataType,
            RawBytes = proto.HasRawData ? proto.RawData.ToByteArray() : null,
            IsExternal = proto.DataLocation == TensorProto.Types.DataLocation.External,
            Proto = proto,
            HasStrings = proto.StringData.Count > 0,
            HasSegment = proto.Segment is not null,
            Origin = origin,
        };
        record.Dims.AddRange(proto.Dims);
        foreach (var entry in proto.ExternalData) record.ExternalData.Add((entry.Key, entry.Value));
        return record;
    }
}
