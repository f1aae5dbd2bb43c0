using System.Runtime.InteropServices;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Tensors;

namespace OnnxStream.Conversion;

/// <summary>
/// The original converter's weight conversions, on one native tensor at a time: int64 → float32 (Mul
/// constants), float32 → float16, float32 → uint8 quantization, and the Gemm and Conv transposes. Each
/// returns a new tensor the caller owns and leaves its input alone.
/// </summary>
internal static unsafe class WeightEncoding
{
    /// <summary>Parameters of an asymmetric uint8 quantization: real = (q - ZeroPoint) × Scale.</summary>
    internal readonly record struct QuantizationRange(double Scale, int ZeroPoint)
    {
        /// <summary>The model.txt type: <c>uint8[SCALE,ZERO_POINT]</c>, SCALE as Python writes the double.</summary>
        public string TypeText => $"uint8[{PythonFloat.Format(Scale)},{ZeroPoint}]";
    }

    /// <summary>int64 values as float32 (numpy's astype: the nearest float).</summary>
    public static Tensor Int64ToFloat32(Tensor source, NativeAllocator allocator)
    {
        var result = Tensor.Allocate(ElementType.Float32, source.Shape, allocator);
        var from = source.Span<long>();
        var to = result.Span<float>();
        for (var i = 0; i < from.Length; i++) to[i] = from[i];
        return result;
    }

    /// <summary>float32 values as float16, rounded to nearest even (numpy's astype).</summary>
    public static Tensor ToFloat16(Tensor source, NativeAllocator allocator)
    {
        var result = Tensor.Allocate(ElementType.Float16, source.Shape, allocator);
        var from = source.Span<float>();
        var to = result.Span<Half>();
        for (var i = 0; i < from.Length; i++) to[i] = (Half)from[i];
        return result;
    }

    /// <summary>
    /// The original's range rule: the 0.1%..99.9% percentiles of the finite values (<see cref="PercentileRange"/>),
    /// encoded by <see cref="Kernels.Quantization.FromRange"/>'s rule. Null when fewer than two values are finite
    /// or the range is empty (the weight then stays float32).
    /// </summary>
    public static QuantizationRange? Range(ReadOnlySpan<float> values) =>
        PercentileRange.Compute(values) is { } range && Kernels.Quantization.TryEncodeRange(range.Low, range.High, out var scale, out var zero)
            ? new QuantizationRange(scale, zero)
            : null;

    /// <summary>
    /// The original's quantize(): a single finite value becomes the byte 1, of shape [1] whatever its shape
    /// was (a scalar too), with scale |v| and zero point 0 (v ≥ 0) or 2; otherwise q = clip(v / scale + zero, 0, 255) truncated, computed in float32 as numpy
    /// does. Null when the weight stays float32 (see <see cref="Range"/>).
    /// </summary>
    public static (Tensor Data, string TypeText)? Quantize(Tensor source, NativeAllocator allocator)
    {
        var values = source.Span<float>();
        if (values.Length == 1 && float.IsFinite(values[0]))
        {
            var single = Tensor.Allocate(ElementType.UInt8, [1], allocator);
            single.Span<byte>()[0] = 1;
            return (single, new QuantizationRange(Math.Abs((double)values[0]), values[0] >= 0 ? 0 : 2).TypeText);
        }
        if (Range(values) is not { } range) return null;
        var result = Tensor.Allocate(ElementType.UInt8, source.Shape, allocator);
        var bytes = result.Span<byte>();
        var scale = (float)range.Scale;
        float zero = range.ZeroPoint;
        for (var i = 0; i < values.Length; i++)
        {
            var q = values[i] / scale;
            q += zero;
            bytes[i] = float.IsNaN(q) ? (byte)0 : (byte)Math.Clamp(q, 0f, 255f);
        }
        return (result, range.TypeText);
    }

    /// <summary>
    /// For each of <paramref name="batch"/> blocks, the (<paramref name="rows"/> × <paramref name="columns"/>)
    /// matrix transposed, into a tensor of <paramref name="shape"/>: a 2-D transpose with batch 1, OIHW → OHWI
    /// with batch O, rows I and columns H·W.
    /// </summary>
    public static Tensor Transpose(Tensor source, int batch, int rows, int columns, int[] shape, NativeAllocator allocator)
    {
        var result = Tensor.Allocate(source.ElementType, shape, allocator, source.Quantization);
        using var pool = XnnThreadPool.Create(1);
        TransposeKernel.Run(pool, source.ElementType.Size(), batch, rows, columns, AxisHelper.Data(source), 0, AxisHelper.Data(result));
        return result;
    }
}
