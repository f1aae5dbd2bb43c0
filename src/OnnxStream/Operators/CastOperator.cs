using System.Runtime.CompilerServices;
using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Cast to the TensorProto data type in attribute <c>to</c>: 1 float32, 10 float16, 7 int64,
/// 6 int32, 2 uint8, 9 bool; from any of those. As ONNX Runtime: float to integer truncates toward zero
/// (out-of-range values are unspecified; here int64 and int32 saturate, NaN gives 0, uint8 wraps the
/// int32 truncation), integer to integer wraps, int64 to float16 goes through float32, anything to
/// bool is "nonzero" (NaN is true). A quantized uint8 input cast to a float type is dequantized.
/// float32 ↔ float16 run on XNNPACK.
/// </summary>
internal sealed unsafe class CastOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var to = InferType(context, x);
        var output = context.Output(0, to, x.Shape);
        if (output.ElementCount == 0) return;
        var from = x.ElementType;

        if (x.Quantization is not null && to is ElementType.Float32 or ElementType.Float16)
        {
            using var wide = Layout.ToFloat32(context, x, "input", out _);
            Layout.FromFloat32(context, wide, output);
            return;
        }
        if (from == to && from != ElementType.Bool)
        {
            AxisHelper.CopyAll(context, x, output);
            return;
        }
        switch (from, to)
        {
            case (ElementType.Float32, ElementType.Float16):
                ConversionKernels.ToFloat16(context.Pool, x.ElementCount, x.Buffer<float>(), output.Buffer<Half>());
                return;
            case (ElementType.Float16, ElementType.Float32):
                ConversionKernels.ToFloat32(context.Pool, x.ElementCount, x.Buffer<Half>(), output.Buffer<float>());
                return;
        }
        switch (from)
        {
            case ElementType.Float32: From<float>(context, x, output); break;
            case ElementType.Float16: From<Half>(context, x, output); break;
            case ElementType.Int64: From<long>(context, x, output); break;
            case ElementType.Int32: From<int>(context, x, output); break;
            default: From<byte>(context, x, output); break; // uint8 and bool (0 or 1)
        }
    }

    /// <summary>The output's element type from attribute <c>to</c>; the output has the input's shape.</summary>
    public static ElementType InferType(OperatorContext context, Tensor x)
    {
        if (!context.Attributes.Has("to")) throw context.Error("attribute 'to' is required");
        var to = context.Attributes.GetInt("to", 0);
        var type = ToElementType(to) ?? throw context.Error($"cannot cast to ONNX data type {to} ({OnnxTypeName(to)}); " +
            "supported: 1 float32, 10 float16, 7 int64, 6 int32, 2 uint8, 9 bool");
        if (x.Quantization is not null && type is not (ElementType.Float32 or ElementType.Float16 or ElementType.UInt8))
            throw context.Error($"cannot cast a quantized uint8 tensor to {type}");
        return type;
    }

    /// <summary>The element type of an ONNX TensorProto data type number, or null when unsupported.</summary>
    internal static ElementType? ToElementType(long onnxType) => onnxType switch
    {
        1 => ElementType.Float32,
        2 => ElementType.UInt8,
        6 => ElementType.Int32,
        7 => ElementType.Int64,
        9 => ElementType.Bool,
        10 => ElementType.Float16,
        _ => null,
    };

    private static string OnnxTypeName(long onnxType) => onnxType switch
    {
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        8 => "string",
        11 => "double",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        >= 17 and <= 23 => "float8/4-bit",
        _ => "unknown",
    };

    private static void From<TIn>(OperatorContext context, Tensor x, Tensor output) where TIn : unmanaged
    {
        switch (output.ElementType)
        {
            case ElementType.Float32: Convert<TIn, float>(context, x, output, false); break;
            case ElementType.Float16: Convert<TIn, Half>(context, x, output, false); break;
            case ElementType.Int64: Convert<TIn, long>(context, x, output, false); break;
            case ElementType.Int32: Convert<TIn, int>(context, x, output, false); break;
            case ElementType.UInt8: Convert<TIn, byte>(context, x, output, false); break;
            default: Convert<TIn, byte>(context, x, output, true); break;
        }
    }

    private static void Convert<TIn, TOut>(OperatorContext context, Tensor x, Tensor output, bool toBool)
        where TIn : unmanaged where TOut : unmanaged
    {
        var source = (nint)AxisHelper.Data(x);
        var destination = (nint)AxisHelper.Data(output);
        UnaryElementwise.ForRanges(context, x.ElementCount, (start, end) =>
        {
            var s = (TIn*)source;
            var d = (TOut*)destination;
            if (toBool)
                for (var i = start; i < end; i++) ((byte*)d)[i] = IsNonZero(s[i]) ? (byte)1 : (byte)0;
            else
                for (var i = start; i < end; i++) d[i] = Element<TIn, TOut>(s[i]);
        });
    }

    private static bool IsNonZero<T>(T value) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Unsafe.As<T, float>(ref value) != 0;
        if (typeof(T) == typeof(Half)) return Unsafe.As<T, Half>(ref value) != Half.Zero;
        if (typeof(T) == typeof(long)) return Unsafe.As<T, long>(ref value) != 0;
        if (typeof(T) == typeof(int)) return Unsafe.As<T, int>(ref value) != 0;
        return Unsafe.As<T, byte>(ref value) != 0;
    }

    private static TOut Element<TIn, TOut>(TIn value) where TIn : unmanaged where TOut : unmanaged
    {
        if (typeof(TIn) == typeof(float) || typeof(TIn) == typeof(Half))
        {
            var f = typeof(TIn) == typeof(float) ? Unsafe.As<TIn, float>(ref value) : (float)Unsafe.As<TIn, Half>(ref value);
            if (typeof(TOut) == typeof(float)) return Result<TOut, float>(f);
            if (typeof(TOut) == typeof(Half)) return Result<TOut, Half>((Half)f);
            if (typeof(TOut) == typeof(long)) return Result<TOut, long>((long)f);
            if (typeof(TOut) == typeof(int)) return Result<TOut, int>((int)f);
            return Result<TOut, byte>(unchecked((byte)(int)f));
        }
        long v;
        if (typeof(TIn) == typeof(long)) v = Unsafe.As<TIn, long>(ref value);
        else if (typeof(TIn) == typeof(int)) v = Unsafe.As<TIn, int>(ref value);
        else v = Unsafe.As<TIn, byte>(ref value);
        if (typeof(TOut) == typeof(float)) return Result<TOut, float>(v);
        if (typeof(TOut) == typeof(Half)) return Result<TOut, Half>((Half)(float)v);
        if (typeof(TOut) == typeof(long)) return Result<TOut, long>(v);
        if (typeof(TOut) == typeof(int)) return Result<TOut, int>(unchecked((int)v));
        return Result<TOut, byte>(unchecked((byte)v));
    }

    private static TOut Result<TOut, T>(T value) => Unsafe.As<T, TOut>(ref value);
}
