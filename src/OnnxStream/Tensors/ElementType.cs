namespace OnnxStream.Tensors;

/// <summary>Element types of tensors.</summary>
public enum ElementType
{
    /// <summary>IEEE binary32.</summary>
    Float32,
    /// <summary>IEEE binary16.</summary>
    Float16,
    /// <summary>uint8, asymmetrically quantized when the tensor has a <see cref="Kernels.Quantization"/>.</summary>
    UInt8,
    /// <summary>int64 (shapes, indices).</summary>
    Int64,
    /// <summary>int32.</summary>
    Int32,
    /// <summary>bool, one byte per element.</summary>
    Bool,
}

/// <summary>Facts about element types.</summary>
public static class ElementTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this ElementType type) => type switch
    {
        ElementType.Float32 or ElementType.Int32 => 4,
        ElementType.Float16 => 2,
        ElementType.Int64 => 8,
        _ => 1,
    };

    /// <summary>The element type of CLR type <typeparamref name="T"/>.</summary>
    public static ElementType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? ElementType.Float32
        : typeof(T) == typeof(Half) ? ElementType.Float16
        : typeof(T) == typeof(byte) ? ElementType.UInt8
        : typeof(T) == typeof(long) ? ElementType.Int64
        : typeof(T) == typeof(int) ? ElementType.Int32
        : throw new NotSupportedException($"No tensor element type for {typeof(T).Name}.");

    /// <summary>Parses a model.txt type name (float32, float16, int64, uint8, int32, bool).</summary>
    public static bool TryParse(string name, out ElementType type)
    {
        switch (name)
        {
            case "float32": type = ElementType.Float32; return true;
            case "float16": type = ElementType.Float16; return true;
            case "int64": type = ElementType.Int64; return true;
            case "uint8": type = ElementType.UInt8; return true;
            case "int32": type = ElementType.Int32; return true;
            case "bool": type = ElementType.Bool; return true;
            default: type = default; return false;
        }
    }
}
