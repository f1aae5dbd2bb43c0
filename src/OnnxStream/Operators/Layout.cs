using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// Layout and element-type plumbing for the operators that wrap NHWC native kernels: cache-blocked
/// NCHW ↔ NHWC transposes, and float16/uint8 → float32 scratch copies (the operators compute in float32).
/// </summary>
internal static unsafe class Layout
{
    /// <summary>
    /// dst[b, p, ch] = src[b, ch, p] for b &lt; <paramref name="n"/>, ch &lt; <paramref name="c"/>,
    /// p &lt; <paramref name="hw"/>. Also turns an OIHW kernel into OHWI (n = O, c = I, hw = kH·kW).
    /// </summary>
    public static void NchwToNhwc<T>(ReadOnlySpan<T> src, Span<T> dst, int n, int c, int hw, XnnThreadPool pool)
        where T : unmanaged =>
        Transpose(src, dst, n, c, hw, pool);

    /// <summary>dst[b, ch, p] = src[b, p, ch]: the inverse of <see cref="NchwToNhwc{T}"/>.</summary>
    public static void NhwcToNchw<T>(ReadOnlySpan<T> src, Span<T> dst, int n, int c, int hw, XnnThreadPool pool)
        where T : unmanaged =>
        Transpose(src, dst, n, hw, c, pool);

    /// <summary>For each of <paramref name="n"/> matrices: dst (cols × rows) = transpose of src (rows × cols).</summary>
    private static void Transpose<T>(ReadOnlySpan<T> src, Span<T> dst, int n, int rows, int cols, XnnThreadPool pool)
        where T : unmanaged
    {
        var count = (long)n * rows * cols;
        if (src.Length < count || dst.Length < count)
            throw new ArgumentException($"a transpose of {n}×{rows}×{cols} needs {count} elements; source has {src.Length}, destination {dst.Length}");
        fixed (T* s = src)
        fixed (T* d = dst)
            TransposeKernel.Run(pool, sizeof(T), n, rows, cols, s, 0, d);
    }

    /// <summary>
    /// <paramref name="tensor"/>'s values as float32: the tensor itself when it is float32 (then
    /// <paramref name="owned"/> is false), else a scratch copy the caller must dispose (float16 widened,
    /// quantized uint8 dequantized).
    /// </summary>
    public static Tensor ToFloat32(OperatorContext context, Tensor tensor, string name, out bool owned)
    {
        switch (tensor.ElementType)
        {
            case ElementType.Float32:
                owned = false;
                return tensor;
            case ElementType.Float16:
            {
                var scratch = context.Scratch(ElementType.Float32, tensor.Shape);
                try
                {
                    ConversionKernels.ToFloat32(context.Pool, tensor.ElementCount, tensor.Buffer<Half>(), scratch.Buffer<float>());
                }
                catch
                {
                    scratch.Dispose();
                    throw;
                }
                owned = true;
                return scratch;
            }
            case ElementType.UInt8 when tensor.Quantization is { } quantization:
            {
                var scratch = context.Scratch(ElementType.Float32, tensor.Shape);
                try
                {
                    ConversionKernels.Dequantize(context.Pool, tensor.ElementCount, tensor.Buffer<byte>(), quantization, scratch.Buffer<float>());
                }
                catch
                {
                    scratch.Dispose();
                    throw;
                }
                owned = true;
                return scratch;
            }
            default:
                throw context.Error($"{name} must be float32 or float16{(tensor.ElementType == ElementType.UInt8 ? " (or quantized uint8)" : "")}, not {tensor.ElementType}");
        }
    }

    /// <summary>
    /// <paramref name="tensor"/>'s values as <typeparamref name="T"/> (float: <see cref="ToFloat32"/>; Half: the
    /// tensor itself when it is float16, else a rounded scratch copy the caller disposes).
    /// </summary>
    public static Tensor ToType<T>(OperatorContext context, Tensor tensor, string name, out bool owned) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return ToFloat32(context, tensor, name, out owned);
        if (typeof(T) != typeof(Half)) throw new ArgumentException($"no conversion to {typeof(T).Name}");
        if (tensor.ElementType == ElementType.Float16)
        {
            owned = false;
            return tensor;
        }
        var wide = ToFloat32(context, tensor, name, out var ownsWide);
        var half = context.Scratch(ElementType.Float16, tensor.Shape);
        try
        {
            ConversionKernels.ToFloat16(context.Pool, wide.ElementCount, wide.Buffer<float>(), half.Buffer<Half>());
        }
        catch
        {
            half.Dispose();
            throw;
        }
        finally
        {
            if (ownsWide) wide.Dispose();
        }
        owned = true;
        return half;
    }

    /// <summary>Writes the float32 <paramref name="source"/> into <paramref name="destination"/> (float32: copy; float16: rounded).</summary>
    public static void FromFloat32(OperatorContext context, Tensor source, Tensor destination)
    {
        switch (destination.ElementType)
        {
            case ElementType.Float32:
                source.Span<float>().CopyTo(destination.Span<float>());
                break;
            case ElementType.Float16:
                ConversionKernels.ToFloat16(context.Pool, source.ElementCount, source.Buffer<float>(), destination.Buffer<Half>());
                break;
            default:
                throw context.Error($"cannot write float32 results into a {destination.ElementType} tensor");
        }
    }

    /// <summary>Pooling's required <c>kernel_shape</c>: one positive size per spatial dimension of <paramref name="x"/>.</summary>
    public static int[] PoolingKernel(OperatorContext context, Tensor x, int spatial)
    {
        var kernelShape = context.Attributes.GetInts("kernel_shape")
            ?? throw context.Error("attribute 'kernel_shape' is required");
        if (kernelShape.Length != spatial)
            throw context.Error($"kernel_shape {AxisHelper.Format(kernelShape)} must have {spatial} values for X {AxisHelper.Format(x.Shape)}");
        if (kernelShape.Any(k => k < 1 || k > int.MaxValue / 4))
            throw context.Error($"kernel_shape {AxisHelper.Format(kernelShape)} must be positive");
        return kernelShape.Select(k => (int)k).ToArray();
    }

    /// <summary>The spatial sizes, strides, dilations and pads of a convolution or pooling window.</summary>
    /// <param name="context">For errors.</param>
    /// <param name="input">The input's spatial sizes.</param>
    /// <param name="kernel">The window's sizes.</param>
    /// <param name="ceilMode">Pooling's ceil_mode (false for Conv).</param>
    /// <param name="pads">Out: begin pads then end pads (ONNX order); the end pads grow when ceil_mode needs it.</param>
    /// <param name="strides">Out: strides.</param>
    /// <param name="dilations">Out: dilations.</param>
    /// <returns>The output's spatial sizes.</returns>
    public static int[] WindowGeometry(OperatorContext context, ReadOnlySpan<int> input, ReadOnlySpan<int> kernel, bool ceilMode,
        out int[] pads, out int[] strides, out int[] dilations)
    {
        var rank = input.Length;
        var attributes = context.Attributes;
        strides = ReadPositive(context, "strides", rank);
        dilations = ReadPositive(context, "dilations", rank);
        var autoPad = attributes.GetString("auto_pad", "NOTSET");
        pads = new int[2 * rank];
        var output = new int[rank];
        switch (autoPad)
        {
            case "NOTSET":
            {
                var given = attributes.GetInts("pads");
                if (given is not null)
                {
                    if (given.Length != 2 * rank)
                        throw context.Error($"pads has {given.Length} values {AxisHelper.Format(given)}; {2 * rank} expected for {rank} spatial dimensions");
                    for (var i = 0; i < given.Length; i++)
                    {
                        if (given[i] < 0 || given[i] > int.MaxValue / 4)
                            throw context.Error($"pads {AxisHelper.Format(given)} must be non-negative");
                        pads[i] = (int)given[i];
                    }
                }
                break;
            }
            case "VALID":
                break;
            case "SAME_UPPER":
            case "SAME_LOWER":
                for (var i = 0; i < rank; i++)
                {
                    var outSize = (input[i] + strides[i] - 1) / strides[i];
                    var dilated = (long)dilations[i] * (kernel[i] - 1) + 1;
                    var total = (int)Math.Max(0, (outSize - 1L) * strides[i] + dilated - input[i]);
                    var small = total / 2;
                    pads[i] = autoPad == "SAME_UPPER" ? small : total - small;
                    pads[i + rank] = total - pads[i];
                }
                break;
            default:
                throw context.Error($"auto_pad '{autoPad}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
        }

        for (var i = 0; i < rank; i++)
        {
            var dilated = (long)dilations[i] * (kernel[i] - 1) + 1;
            var numerator = input[i] + (long)pads[i] + pads[i + rank] - dilated;
            if (numerator < 0)
                throw context.Error($"the window (size {kernel[i]}, dilation {dilations[i]}) is larger than spatial dimension {i} of the input ({input[i]}, padded {pads[i]}+{pads[i + rank]})");
            long size = numerator / strides[i] + 1;
            if (ceilMode && autoPad is "NOTSET" or "VALID")
            {
                size = (numerator + strides[i] - 1) / strides[i] + 1;
                // The last window must start inside the input or its begin padding (ONNX, onnx/onnx#5741).
                if ((size - 1) * strides[i] >= input[i] + (long)pads[i]) size--;
                // Pad the end so that a floor-mode window count gives the same size.
                var needed = (size - 1) * strides[i] + dilated - (input[i] + (long)pads[i] + pads[i + rank]);
                if (needed > 0) pads[i + rank] += (int)needed;
            }
            if (size > int.MaxValue) throw context.Error($"output spatial dimension {i} would be {size}");
            output[i] = (int)size;
        }
        return output;
    }

    private static int[] ReadPositive(OperatorContext context, string name, int rank)
    {
        var values = context.Attributes.GetInts(name);
        var result = new int[rank];
        if (values is null)
        {
            Array.Fill(result, 1);
            return result;
        }
        if (values.Length != rank)
            throw context.Error($"{name} has {values.Length} values {AxisHelper.Format(values)}; {rank} expected for {rank} spatial dimensions");
        for (var i = 0; i < rank; i++)
        {
            if (values[i] < 1 || values[i] > int.MaxValue / 4)
                throw context.Error($"{name} {AxisHelper.Format(values)} must be positive");
            result[i] = (int)values[i];
        }
        return result;
    }
}
