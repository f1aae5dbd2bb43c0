using OnnxStream.Interop;

namespace OnnxStream.Kernels;

/// <summary>Element types of native kernels.</summary>
public enum KernelDataType
{
    /// <summary>IEEE binary32 (<see cref="float"/>).</summary>
    Float32,
    /// <summary>IEEE binary16 (<see cref="Half"/>).</summary>
    Float16,
    /// <summary>uint8 with a <see cref="Quantization"/> (<see cref="byte"/>).</summary>
    QUInt8,
}

internal static class KernelDataTypes
{
    /// <summary>The kernel data type of element type <typeparamref name="T"/>.</summary>
    public static KernelDataType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? KernelDataType.Float32
        : typeof(T) == typeof(Half) ? KernelDataType.Float16
        : typeof(T) == typeof(byte) ? KernelDataType.QUInt8
        : throw new NotSupportedException($"Native kernels take float, Half or byte elements, not {typeof(T).Name}.");

    public static OsnDatatype ToNative(this KernelDataType type) => type switch
    {
        KernelDataType.Float32 => OsnDatatype.F32,
        KernelDataType.Float16 => OsnDatatype.F16,
        _ => OsnDatatype.Qu8,
    };

    /// <summary>Throws unless <paramref name="buffer"/> holds at least <paramref name="required"/> elements.</summary>
    public static void CheckLength<T>(string name, Memory.NativeBuffer<T> buffer, long required) where T : unmanaged
    {
        if (buffer.Length < required)
            throw new ArgumentException($"{name} holds {buffer.Length} elements; {required} are needed.", name);
    }
}
