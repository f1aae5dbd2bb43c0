using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Onnx;
using OnnxStream.Tensors;

namespace OnnxStream.Graph.OnnxFormat;

/// <summary>
/// Turns a <see cref="TensorRecord"/> into a weight descriptor: a range of the .onnx file (raw_data, or a
/// packed float_data field), a range of an external data file (checked to exist and be long enough), or
/// inline bytes (tensors already in memory, typed fields other than one packed float_data, doubles
/// narrowed to float32). Nothing large is read.
/// </summary>
internal static class TensorMaterializer
{
    /// <summary>The engine's element type of an ONNX data type, or null when unsupported.</summary>
    public static ElementType? ElementTypeOf(int dataType) => (TensorProto.Types.DataType)dataType switch
    {
        TensorProto.Types.DataType.Float => ElementType.Float32,
        TensorProto.Types.DataType.Float16 => ElementType.Float16,
        TensorProto.Types.DataType.Int64 => ElementType.Int64,
        TensorProto.Types.DataType.Int32 => ElementType.Int32,
        TensorProto.Types.DataType.Uint8 => ElementType.UInt8,
        TensorProto.Types.DataType.Bool => ElementType.Bool,
        TensorProto.Types.DataType.Double => ElementType.Float32, // narrowed
        _ => null,
    };

    /// <summary>The ONNX name of a data type code, for messages.</summary>
    public static string DataTypeName(int dataType) =>
        Enum.IsDefined(typeof(TensorProto.Types.DataType), dataType)
            ? ((TensorProto.Types.DataType)dataType).ToString().ToUpperInvariant()
            : $"data type {dataType}";

    /// <summary>
    /// The weight named <paramref name="name"/> holding <paramref name="record"/>'s data, or null when the
    /// tensor has no elements (an empty tensor: consumers see an omitted input).
    /// </summary>
    public static TensorDescriptor? ToWeight(TensorRecord record, string name, string onnxPath, ModelFolder folder)
    {
        string where() => $"{onnxPath}: {record.Origin()}";
        var isDouble = record.DataType == (int)TensorProto.Types.DataType.Double;
        var type = ElementTypeOf(record.DataType)
            ?? throw new ModelFormatException($"{where()}: element type {DataTypeName(record.DataType)} is not supported (float, float16, double, int64, int32, uint8, bool)");
        if (record.HasStrings) throw new ModelFormatException($"{where()}: string tensors are not supported");
        if (record.HasSegment) throw new ModelFormatException($"{where()}: segmented tensors are not supported");

        var shape = new int[record.Dims.Count];
        long count = 1;
        for (var i = 0; i < shape.Length; i++)
        {
            var dim = record.Dims[i];
            if (dim < 0 || dim > int.MaxValue) throw new ModelFormatException($"{where()}: dimension {i} is {dim}");
            shape[i] = (int)dim;
            count *= dim;
            if (count > int.MaxValue) throw new ModelFormatException($"{where()}: [{string.Join(',', record.Dims)}] holds more than 2^31 elements");
        }
        if (count == 0) return null;
        var sourceSize = isDouble ? 8 : type.Size();
        var expected = count * sourceSize;
        var convertedBytes = count * type.Size();
        if (isDouble && convertedBytes > WeightLocation.MaxInlineBytes)
            throw new ModelFormatException($"{where()}: a DOUBLE tensor of {count} elements is too large to narrow to float32 at load (limit {WeightLocation.MaxInlineBytes} bytes); convert the model's doubles to float");

        TensorDescriptor Weight(WeightLocation location) => new(name, shape, type, null, location);
        TensorDescriptor Inline(byte[] bytes)
        {
            var data = isDouble ? Narrow(bytes) : bytes;
            return Weight(new WeightLocation(onnxPath, 0, data.Length, data));
        }

        if (record.IsExternal)
        {
            var (file, offset, length) = ExternalRange(record, expected, folder, where());
            return isDouble ? Inline(ReadFile(file, offset, (int)length)) : Weight(new WeightLocation(file, offset, length));
        }
        if (record.RawBytes is { } raw)
        {
            if (raw.Length != expected) throw SizeMismatch(where(), raw.Length, type, shape, expected, isDouble);
            return Inline(raw);
        }
        if (record.RawOffset >= 0)
        {
            if (record.RawLength != expected) throw SizeMismatch(where(), record.RawLength, type, shape, expected, isDouble);
            return isDouble ? Inline(ReadFile(onnxPath, record.RawOffset, (int)record.RawLength)) : Weight(new WeightLocation(onnxPath, record.RawOffset, record.RawLength));
        }
        // One packed float_data field is the float32 data itself, little-endian: use it in place.
        if (type == ElementType.Float32 && !isDouble && record.Segments is [{ Field: 4, Wire: WireType.LengthDelimited } only])
        {
            if (only.Length != expected) throw new ModelFormatException($"{where()}: float_data holds {only.Length / 4} values; [{string.Join(',', shape)}] needs {count}");
            return Weight(new WeightLocation(onnxPath, only.Offset, only.Length));
        }
        return Weight(new WeightLocation(onnxPath, 0, convertedBytes, EncodeTyped(record, type, isDouble, count, onnxPath, where())));
    }

    private static ModelFormatException SizeMismatch(string where, long bytes, ElementType type, int[] shape, long expected, bool isDouble) =>
        new($"{where}: raw_data holds {bytes} bytes; {(isDouble ? "DOUBLE" : type.ToString())} [{string.Join(',', shape)}] needs {expected}");

    private static (string File, long Offset, long Length) ExternalRange(TensorRecord record, long expected, ModelFolder folder, string where)
    {
        string? location = null;
        long offset = 0, length = expected;
        foreach (var (key, value) in record.ExternalData)
        {
            switch (key)
            {
                case "location": location = value; break;
                case "offset":
                    if (!long.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out offset) || offset < 0)
                        throw new ModelFormatException($"{where}: external data offset '{value}' is not a non-negative integer");
                    break;
                case "length":
                    if (!long.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out length) || length < 0)
                        throw new ModelFormatException($"{where}: external data length '{value}' is not a non-negative integer");
                    break;
            }
        }
        if (string.IsNullOrEmpty(location)) throw new ModelFormatException($"{where}: external data has no 'location'");
        if (length != expected)
            throw new ModelFormatException($"{where}: external data length {length} bytes; [{string.Join(',', record.Dims)}] of {DataTypeName(record.DataType)} needs {expected}");
        var file = folder.Resolve(location, $"{where}: external data");
        var info = LinkedFile.Info(file);
        if (!info.Exists) throw new ModelFormatException($"{where}: external data file {file} is missing");
        if (offset + length > info.Length)
            throw new ModelFormatException($"{where}: external data file {file} holds {info.Length} bytes; the tensor needs bytes {offset} to {offset + length} (truncated file?)");
        return (file, offset, length);
    }

    private static byte[] ReadFile(string path, long offset, int length)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var bytes = new byte[length];
        var done = 0;
        while (done < length)
        {
            var read = RandomAccess.Read(handle, bytes.AsSpan(done), offset + done);
            if (read == 0) throw new ModelFormatException($"{path}: the file ends at byte {offset + done}, inside a tensor (truncated file?)");
            done += read;
        }
        return bytes;
    }

    private static byte[] Narrow(byte[] doubles)
    {
        var source = MemoryMarshal.Cast<byte, double>(doubles);
        var result = new byte[source.Length * 4];
        var target = MemoryMarshal.Cast<byte, float>(result.AsSpan());
        for (var i = 0; i < source.Length; i++) target[i] = (float)source[i];
        return result;
    }

    /// <summary>The values of the typed data fields, as the element type's bytes.</summary>
    private static byte[] EncodeTyped(TensorRecord record, ElementType type, bool isDouble, long count, string onnxPath, string where)
    {
        var values = TypedValues(record, onnxPath);
        var dataType = (TensorProto.Types.DataType)record.DataType;
        int available;
        byte[] result;
        if (isDouble)
        {
            available = values.Doubles.Count;
            result = new byte[count * 4];
            var target = MemoryMarshal.Cast<byte, float>(result.AsSpan());
            for (var i = 0; i < Math.Min(count, available); i++) target[i] = (float)values.Doubles[i];
        }
        else switch (type)
        {
            case ElementType.Float32:
                available = values.Floats.Count;
                result = new byte[count * 4];
                CollectionsMarshal.AsSpan(values.Floats)[..(int)Math.Min(count, available)].CopyTo(MemoryMarshal.Cast<byte, float>(result.AsSpan()));
                break;
            case ElementType.Int64:
                available = values.Int64s.Count;
                result = new byte[count * 8];
                CollectionsMarshal.AsSpan(values.Int64s)[..(int)Math.Min(count, available)].CopyTo(MemoryMarshal.Cast<byte, long>(result.AsSpan()));
                break;
            case ElementType.Int32:
                available = values.Int32s.Count;
                result = new byte[count * 4];
                CollectionsMarshal.AsSpan(values.Int32s)[..(int)Math.Min(count, available)].CopyTo(MemoryMarshal.Cast<byte, int>(result.AsSpan()));
                break;
            case ElementType.Float16: // the bits of each half, in int32_data
                available = values.Int32s.Count;
                result = new byte[count * 2];
                for (var i = 0; i < Math.Min(count, available); i++)
                    BinaryPrimitives.WriteUInt16LittleEndian(result.AsSpan(i * 2), (ushort)values.Int32s[i]);
                break;
            default: // uint8, bool: one value per int32_data entry
                available = values.Int32s.Count;
                result = new byte[count];
                for (var i = 0; i < Math.Min(count, available); i++)
                    result[i] = dataType == TensorProto.Types.DataType.Bool ? (byte)(values.Int32s[i] != 0 ? 1 : 0) : (byte)values.Int32s[i];
                break;
        }
        if (available != count)
            throw new ModelFormatException(available == 0 && !record.HasRaw
                ? $"{where}: the tensor has no data (no raw_data, no external data and no typed values)"
                : $"{where}: holds {available} values; [{string.Join(',', record.Dims)}] needs {count}");
        return result;
    }

    private sealed record Values(List<float> Floats, List<double> Doubles, List<int> Int32s, List<long> Int64s);

    private static Values TypedValues(TensorRecord record, string onnxPath)
    {
        var values = new Values([], [], [], []);
        if (record.Proto is { } proto)
        {
            values.Floats.AddRange(proto.FloatData);
            values.Doubles.AddRange(proto.DoubleData);
            values.Int32s.AddRange(proto.Int32Data);
            values.Int64s.AddRange(proto.Int64Data);
            return values;
        }
        foreach (var segment in record.Segments)
        {
            var bytes = ReadFile(onnxPath, segment.Offset, checked((int)segment.Length));
            switch (segment.Field, segment.Wire)
            {
                case (4, WireType.Fixed32):
                case (4, WireType.LengthDelimited):
                    values.Floats.AddRange(MemoryMarshal.Cast<byte, float>(bytes.AsSpan(0, bytes.Length / 4 * 4)).ToArray());
                    break;
                case (10, WireType.Fixed64):
                case (10, WireType.LengthDelimited):
                    values.Doubles.AddRange(MemoryMarshal.Cast<byte, double>(bytes.AsSpan(0, bytes.Length / 8 * 8)).ToArray());
                    break;
                case (5, WireType.Varint):
                case (5, WireType.LengthDelimited):
                    foreach (var v in Varints(bytes)) values.Int32s.Add((int)(long)v);
                    break;
                case (7, WireType.Varint):
                case (7, WireType.LengthDelimited):
                    foreach (var v in Varints(bytes)) values.Int64s.Add((long)v);
                    break;
                // uint64_data only serves types this engine does not load.
            }
        }
        return values;
    }

    private static List<ulong> Varints(byte[] bytes)
    {
        var result = new List<ulong>();
        ulong value = 0;
        var shift = 0;
        foreach (var b in bytes)
        {
            value |= (ulong)(b & 0x7F) << shift;
            shift += 7;
            if ((b & 0x80) != 0) continue;
            result.Add(value);
            value = 0;
            shift = 0;
        }
        return result;
    }
}
