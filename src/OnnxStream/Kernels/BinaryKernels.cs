using OnnxStream.Interop;
using OnnxStream.Memory;

namespace OnnxStream.Kernels;

/// <summary>Elementwise binary operations.</summary>
public enum BinaryOperation
{
    /// <summary>a + b</summary>
    Add = OsnBinaryOperation.Add,
    /// <summary>a - b</summary>
    Subtract = OsnBinaryOperation.Subtract,
    /// <summary>a × b</summary>
    Multiply = OsnBinaryOperation.Multiply,
    /// <summary>a ÷ b</summary>
    Divide = OsnBinaryOperation.Divide,
}

/// <summary>
/// Add, Subtract, Multiply and Divide with NumPy broadcasting (up to 6 dimensions). float32 has all
/// four; float16 has Add and Multiply; uint8 has Add, Subtract and Multiply (the pinned XNNPACK's kernels).
/// </summary>
public static unsafe class BinaryKernels
{
    /// <summary>output = a (operation) b for float32 or float16 buffers; output has the broadcast shape.</summary>
    public static void Run<T>(XnnThreadPool pool, BinaryOperation operation, NativeBuffer<T> a, ReadOnlySpan<int> aShape,
        NativeBuffer<T> b, ReadOnlySpan<int> bShape, NativeBuffer<T> output) where T : unmanaged
    {
        var type = KernelDataTypes.Of<T>();
        if (type == KernelDataType.QUInt8)
            throw new ArgumentException("uint8 operands need quantization parameters: use RunQUInt8.");
        CheckOperands(a, aShape, b, bShape, output);
        Span<nuint> nativeA = stackalloc nuint[aShape.Length], nativeB = stackalloc nuint[bShape.Length];
        Shapes.ToNative(aShape, nativeA);
        Shapes.ToNative(bShape, nativeB);
        fixed (nuint* sa = nativeA)
        fixed (nuint* sb = nativeB)
        {
            NativeStatus.Check(type == KernelDataType.Float32
                ? NativeMethods.osn_binary_f32((OsnBinaryOperation)operation, (nuint)aShape.Length, sa, (float*)a.Pointer,
                    (nuint)bShape.Length, sb, (float*)b.Pointer, (float*)output.Pointer, pool.Handle)
                : NativeMethods.osn_binary_f16((OsnBinaryOperation)operation, (nuint)aShape.Length, sa, (ushort*)a.Pointer,
                    (nuint)bShape.Length, sb, (ushort*)b.Pointer, (ushort*)output.Pointer, pool.Handle));
        }
    }

    /// <summary>output = a (operation) b for quantized uint8 buffers, each with its own quantization.</summary>
    public static void RunQUInt8(XnnThreadPool pool, BinaryOperation operation,
        NativeBuffer<byte> a, ReadOnlySpan<int> aShape, Quantization aQuantization,
        NativeBuffer<byte> b, ReadOnlySpan<int> bShape, Quantization bQuantization,
        NativeBuffer<byte> output, Quantization outputQuantization)
    {
        CheckOperands(a, aShape, b, bShape, output);
        Span<nuint> nativeA = stackalloc nuint[aShape.Length], nativeB = stackalloc nuint[bShape.Length];
        Shapes.ToNative(aShape, nativeA);
        Shapes.ToNative(bShape, nativeB);
        fixed (nuint* sa = nativeA)
        fixed (nuint* sb = nativeB)
        {
            NativeStatus.Check(NativeMethods.osn_binary_qu8((OsnBinaryOperation)operation,
                (nuint)aShape.Length, sa, a.Pointer, aQuantization.ToNative(),
                (nuint)bShape.Length, sb, b.Pointer, bQuantization.ToNative(),
                output.Pointer, outputQuantization.ToNative(), pool.Handle));
        }
    }

    private static void CheckOperands<T>(NativeBuffer<T> a, ReadOnlySpan<int> aShape, NativeBuffer<T> b,
        ReadOnlySpan<int> bShape, NativeBuffer<T> output) where T : unmanaged
    {
        KernelDataTypes.CheckLength(nameof(a), a, Shapes.ElementCount(aShape));
        KernelDataTypes.CheckLength(nameof(b), b, Shapes.ElementCount(bShape));
        // Shapes that do not broadcast are left to the native check, which names them.
        if (Shapes.TryBroadcast(aShape, bShape, out var outputShape))
            KernelDataTypes.CheckLength(nameof(output), output, Shapes.ElementCount(outputShape));
    }
}
