using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX AveragePool (opset 19 semantics), 1-D, 2-D and 3-D: X [N, C, (D, )(H, )W]; kernel_shape, strides,
/// pads, auto_pad, ceil_mode, dilations and count_include_pad. Each output is the sum of its window's
/// in-bounds elements divided by, with count_include_pad = 1, the number of window positions inside the
/// padded input (so a ceil_mode window that runs past the end padding is not divided by its full size, as
/// in ONNX Runtime), else by the number of in-bounds positions. A managed NCHW loop, one (n, c) plane per
/// task; float16 is summed in float32 and rounded back. As in ONNX Runtime, explicit pads must be smaller
/// than the window.
/// </summary>
internal sealed unsafe class AveragePoolOperator : IOperator
{
    /// <summary>Outputs fewer than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 14;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var plan = InferShape(context, x);
        var output = context.Output(0, x.ElementType, plan.OutputShape);
        if (output.ElementCount == 0) return;

        var xf = Layout.ToFloat32(context, x, "X", out var ownsX);
        Tensor? result = null;
        try
        {
            result = output.ElementType == ElementType.Float32 ? output : context.Scratch(ElementType.Float32, plan.OutputShape);
            Pool(context, plan, xf, result);
            if (result != output) Layout.FromFloat32(context, result, output);
        }
        finally
        {
            if (ownsX) xf.Dispose();
            if (result != output) result?.Dispose();
        }
    }

    /// <summary>The taps of one axis' window at one output index: in-bounds taps [First, End) and the divisor's factor.</summary>
    private readonly record struct AxisWindow(int Start, int First, int End, int Count);

    /// <summary>Per axis and output index, which taps of the window fall in the input and how many count for the divisor.</summary>
    private static AxisWindow[] Windows(PoolPlan plan, int axis)
    {
        var (input, kernel, stride, dilation) = (plan.Input[axis], plan.Kernel[axis], plan.Strides[axis], plan.Dilations[axis]);
        var windows = new AxisWindow[plan.Output[axis]];
        for (var o = 0; o < windows.Length; o++)
        {
            var start = (long)o * stride - plan.PadBegin[axis];
            var (first, end) = Taps(start, kernel, dilation, 0, input);
            var (countedFirst, countedEnd) = plan.CountIncludePad
                ? Taps(start, kernel, dilation, -plan.PadBegin[axis], (long)input + plan.PadEnd[axis])
                : (first, end);
            windows[o] = new AxisWindow((int)start, first, end, countedEnd - countedFirst);
        }
        return windows;
    }

    /// <summary>The taps k in [0, kernel) whose position start + k·dilation lies in [low, high), as [first, end).</summary>
    private static (int First, int End) Taps(long start, int kernel, int dilation, long low, long high)
    {
        var first = low <= start ? 0 : (low - start + dilation - 1) / dilation;
        var end = high <= start ? 0 : Math.Min(kernel, (high - 1 - start) / dilation + 1);
        return first >= end ? (0, 0) : ((int)first, (int)end);
    }

    private static void Pool(OperatorContext context, PoolPlan plan, Tensor x, Tensor y)
    {
        var wd = Windows(plan, 0);
        var wh = Windows(plan, 1);
        var ww = Windows(plan, 2);
        var (id, ih, iw) = (plan.Input[0], plan.Input[1], plan.Input[2]);
        var (od, oh, ow) = (plan.Output[0], plan.Output[1], plan.Output[2]);
        var (dd, dh, dw) = (plan.Dilations[0], plan.Dilations[1], plan.Dilations[2]);
        var inputPlane = (long)id * ih * iw;
        var outputPlane = (long)od * oh * ow;
        var planes = y.Shape[0] * y.Shape[1];
        var src = (nint)AxisHelper.Data(x);
        var dst = (nint)AxisHelper.Data(y);
        void Plane(int p)
        {
            var s = (float*)src + p * inputPlane;
            var d = (float*)dst + p * outputPlane;
            for (var z = 0; z < od; z++)
            {
                var a = wd[z];
                for (var r = 0; r < oh; r++)
                {
                    var b = wh[r];
                    for (var c = 0; c < ow; c++)
                    {
                        var e = ww[c];
                        var sum = 0f;
                        for (var kz = a.First; kz < a.End; kz++)
                        {
                            var slice = s + (long)(a.Start + kz * dd) * ih * iw;
                            for (var ky = b.First; ky < b.End; ky++)
                            {
                                var row = slice + (long)(b.Start + ky * dh) * iw + e.Start;
                                for (var kx = e.First; kx < e.End; kx++) sum += row[kx * dw];
                            }
                        }
                        var count = (long)a.Count * b.Count * e.Count;
                        // Only reachable with dilated windows that straddle the input: nothing to average.
                        *d++ = count == 0 ? 0 : sum / count;
                    }
                }
            }
        }
        if (planes * outputPlane < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism == 1 || planes == 1)
            for (var p = 0; p < planes; p++) Plane(p);
        else
            Parallel.For(0, planes, context.Parallel, Plane);
    }

    /// <summary>
    /// What an AveragePool node computes, as 3-D geometry (1-D and 2-D pools get leading axes of size 1):
    /// begin pads, the end pads as given (not grown by ceil_mode), and the output shape.
    /// </summary>
    internal sealed record PoolPlan(int[] Input, int[] Output, int[] Kernel, int[] Strides, int[] Dilations, int[] PadBegin,
        int[] PadEnd, bool CountIncludePad, int[] OutputShape);

    /// <summary>Checks X and the attributes and infers the output shape [N, C, (outD, )(outH, )outW].</summary>
    internal static PoolPlan InferShape(OperatorContext context, Tensor x)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16))
            throw context.Error($"X must be float32 or float16, not {x.ElementType}");
        var rank = x.Shape.Length;
        if (rank is < 3 or > 5)
            throw context.Error($"X must be 3-D [N,C,L], 4-D NCHW or 5-D NCDHW, got {AxisHelper.Format(x.Shape)} (only 1-D to 3-D pooling is supported)");
        var spatial = rank - 2;
        var kernel = Layout.PoolingKernel(context, x, spatial);
        var ceilMode = context.Flag("ceil_mode");
        var countIncludePad = context.Flag("count_include_pad");
        var input = x.Shape[2..];
        var autoPad = context.Attributes.GetString("auto_pad", "NOTSET");
        var explicitPads = context.Attributes.GetInts("pads");
        if (autoPad == "NOTSET" && explicitPads is not null && explicitPads.Length == 2 * spatial &&
            explicitPads.Where((p, i) => p >= kernel[i % spatial]).Any())
            throw context.Error($"pads {AxisHelper.Format(explicitPads)} must be smaller than kernel_shape {AxisHelper.Format(kernel)}");
        var outputSpatial = Layout.WindowGeometry(context, input, kernel, ceilMode, out var pads, out var strides, out var dilations);

        // ceil_mode grows the end pads in `pads`; the divisor counts only the pads the node asked for.
        var padEnd = new int[spatial];
        for (var i = 0; i < spatial; i++)
            padEnd[i] = autoPad switch
            {
                "NOTSET" => explicitPads is null ? 0 : (int)explicitPads[spatial + i],
                "VALID" => 0,
                _ => pads[spatial + i],
            };

        int[] To3D(ReadOnlySpan<int> values, int fill)
        {
            var result = new[] { fill, fill, fill };
            values.CopyTo(result.AsSpan(3 - spatial));
            return result;
        }
        var outputShape = new int[rank];
        outputShape[0] = x.Shape[0];
        outputShape[1] = x.Shape[1];
        outputSpatial.CopyTo(outputShape, 2);
        return new PoolPlan(To3D(input, 1), To3D(outputSpatial, 1), To3D(kernel, 1), To3D(strides, 1), To3D(dilations, 1),
            To3D(pads.AsSpan(0, spatial), 0), To3D(padEnd, 0), countIncludePad, outputShape);
    }
}
