using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX MaxPool, 1-D and 2-D: X [N,C,(H,)W]; kernel_shape, pads, strides, dilations, auto_pad and
/// ceil_mode. float32 and quantized uint8 run XNNPACK's NHWC max pooling between transposes; float16 is
/// widened to float32 and rounded back (exact: max only selects). 1×1 windows, which XNNPACK rejects, run a
/// managed NCHW loop. As in ONNX Runtime, pads must be smaller than the window, so that every window holds an
/// input element. Only output 0 is supported: the Indices output is rejected.
/// </summary>
internal sealed class MaxPoolOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        if (context.OutputCount > 1)
            throw context.Error("the Indices output (output 1) is not supported; only Y is");
        var x = context.Input(0);
        var plan = InferShape(context, x);
        var output = context.Output(0, x.ElementType, plan.OutputShape, x.Quantization);
        if (output.ElementCount == 0) return;

        var g = plan.Geometry;
        // XNNPACK rejects 1×1 windows.
        var managed = g.PoolingHeight * g.PoolingWidth == 1;

        if (x.ElementType == ElementType.UInt8)
        {
            if (managed) PoolManaged<byte>(context, g, x, output, plan);
            else PoolNative<byte>(context, g, x, output, plan);
            return;
        }
        var xf = Layout.ToFloat32(context, x, "X", out var ownsX);
        Tensor? result = null;
        try
        {
            result = output.ElementType == ElementType.Float32 ? output : context.Scratch(ElementType.Float32, output.Shape);
            if (managed) PoolManaged<float>(context, g, xf, result, plan);
            else PoolNative<float>(context, g, xf, result, plan);
            if (result != output) Layout.FromFloat32(context, result, output);
        }
        finally
        {
            if (ownsX) xf.Dispose();
            if (result != output) result?.Dispose();
        }
    }

    private static void PoolNative<T>(OperatorContext context, Pooling2dGeometry g, Tensor x, Tensor y, PoolPlan plan)
        where T : unmanaged
    {
        var n = x.Shape[0];
        var c = x.Shape[1];
        var inputPixels = plan.InputHeight * plan.InputWidth;
        var outputPixels = plan.OutputHeight * plan.OutputWidth;
        if (c == 1)
        {
            // NCHW is NHWC.
            MaxPooling2dKernel.Run(context.Pool, g, n, plan.InputHeight, plan.InputWidth, c, x.Buffer<T>(), y.Buffer<T>());
            return;
        }
        using var nhwcIn = context.Scratch(x.ElementType, x.Shape);
        using var nhwcOut = context.Scratch(y.ElementType, y.Shape);
        Layout.NchwToNhwc<T>(x.Span<T>(), nhwcIn.Span<T>(), n, c, inputPixels, context.Pool);
        MaxPooling2dKernel.Run(context.Pool, g, n, plan.InputHeight, plan.InputWidth, c, nhwcIn.Buffer<T>(), nhwcOut.Buffer<T>());
        Layout.NhwcToNchw<T>(nhwcOut.Span<T>(), y.Span<T>(), n, c, outputPixels, context.Pool);
    }

    /// <summary>Max over the window's in-bounds positions, one (n, c) plane at a time; a 1×1 window is a strided copy.</summary>
    private static unsafe void PoolManaged<T>(OperatorContext context, Pooling2dGeometry g, Tensor x, Tensor y, PoolPlan plan)
        where T : unmanaged, System.Numerics.INumber<T>
    {
        var planes = x.Shape[0] * x.Shape[1];
        var (ih, iw, oh, ow) = (plan.InputHeight, plan.InputWidth, plan.OutputHeight, plan.OutputWidth);
        var src = (nint)AxisHelper.Data(x);
        var dst = (nint)AxisHelper.Data(y);
        void Plane(int p)
        {
            var s = (T*)src + (long)p * ih * iw;
            var d = (T*)dst + (long)p * oh * ow;
            for (var oy = 0; oy < oh; oy++)
            {
                var y0 = oy * g.StrideHeight - g.PaddingTop;
                for (var ox = 0; ox < ow; ox++)
                {
                    var x0 = ox * g.StrideWidth - g.PaddingLeft;
                    var found = false;
                    var best = T.Zero;
                    for (var ky = 0; ky < g.PoolingHeight; ky++)
                    {
                        var iy = y0 + ky * g.DilationHeight;
                        if ((uint)iy >= (uint)ih) continue;
                        var row = s + (long)iy * iw;
                        for (var kx = 0; kx < g.PoolingWidth; kx++)
                        {
                            var ix = x0 + kx * g.DilationWidth;
                            if ((uint)ix >= (uint)iw) continue;
                            var v = row[ix];
                            if (!found || v > best || T.IsNaN(v)) best = v;
                            found = true;
                        }
                    }
                    // Every window holds an input element (pads < kernel_shape, ceil_mode windows start inside).
                    d[(long)oy * ow + ox] = best;
                }
            }
        }
        if ((long)planes * oh * ow < 1 << 14 || context.Parallel.MaxDegreeOfParallelism == 1)
            for (var p = 0; p < planes; p++) Plane(p);
        else
            Parallel.For(0, planes, context.Parallel, Plane);
    }

    /// <summary>What a MaxPool node computes: the 2-D geometry (ceil_mode folded into the end pads) and the output shape.</summary>
    internal sealed record PoolPlan(Pooling2dGeometry Geometry, int InputHeight, int InputWidth, int OutputHeight, int OutputWidth,
        int[] OutputShape);

    /// <summary>Checks X and the attributes and infers the output shape [N, C, (outH,) outW].</summary>
    internal static PoolPlan InferShape(OperatorContext context, Tensor x)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16) &&
            !(x.ElementType == ElementType.UInt8 && x.Quantization is not null))
            throw context.Error($"X must be float32, float16 or quantized uint8, not {x.ElementType}");
        var rank = x.Shape.Length;
        if (rank is not (3 or 4))
            throw context.Error($"X must be 3-D [N,C,L] or 4-D NCHW, got {AxisHelper.Format(x.Shape)} (only 1-D and 2-D pooling is supported)");
        var spatial = rank - 2;
        var kernel = Layout.PoolingKernel(context, x, spatial);
        context.Flag("storage_order"); // validated only: it orders the Indices output, which is not produced
        var ceilMode = context.Flag("ceil_mode");
        var input = x.Shape[2..];
        var explicitPads = context.Attributes.GetInts("pads");
        if (explicitPads is not null && explicitPads.Length == 2 * spatial &&
            explicitPads.Where((p, i) => p >= kernel[i % spatial]).Any())
            throw context.Error($"pads {AxisHelper.Format(explicitPads)} must be smaller than kernel_shape {AxisHelper.Format(kernel)}");
        var outputSpatial = Layout.WindowGeometry(context, input, kernel, ceilMode, out var pads, out var strides, out var dilations);

        int At(int[] values, int i, int fallback) => spatial == 2 ? values[i] : i == 0 ? fallback : values[0];
        var geometry = new Pooling2dGeometry(
            PoolingHeight: At(kernel, 0, 1), PoolingWidth: At(kernel, 1, 1),
            StrideHeight: At(strides, 0, 1), StrideWidth: At(strides, 1, 1),
            DilationHeight: At(dilations, 0, 1), DilationWidth: At(dilations, 1, 1),
            PaddingTop: spatial == 2 ? pads[0] : 0, PaddingLeft: spatial == 2 ? pads[1] : pads[0],
            PaddingBottom: spatial == 2 ? pads[2] : 0, PaddingRight: spatial == 2 ? pads[3] : pads[1]);
        var outputShape = new int[rank];
        outputShape[0] = x.Shape[0];
        outputShape[1] = x.Shape[1];
        outputSpatial.CopyTo(outputShape, 2);
        return new PoolPlan(geometry, spatial == 2 ? input[0] : 1, input[^1],
            spatial == 2 ? outputSpatial[0] : 1, outputSpatial[^1], outputShape);
    }
}
