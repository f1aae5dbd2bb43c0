using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX ConvTranspose, 1-D and 2-D: X [N, C, (H, )W], W [C, M/group, (kH, )kW], optional B [M] → Y [N, M, …];
/// attributes strides, pads, dilations, group, output_padding, output_shape, auto_pad and kernel_shape, with
/// ONNX Runtime's output size and padding rules: output_shape (spatial dimensions only) overrides pads, and
/// SAME_UPPER/SAME_LOWER without it pad towards an output of input × stride; the total padding is split with
/// the odd element at the end for SAME_UPPER, else at the beginning. As in ONNX Runtime, the output must be
/// one that a Conv with the same kernel, strides and pads maps back to X's size, so output_padding (and an
/// output_shape beyond the full scatter) must stay below the stride. Quantized uint8 weights are dequantized.
/// Computed per image and group as col = Wᵀ·X on the native batched matmul, then a col2im scatter-add
/// into the output, which starts as the bias. The col buffer covers a slice of the output channels at a
/// time, to bound its size. float32, and float16 (activations and/or weights) through float32.
/// </summary>
internal sealed unsafe class ConvTransposeOperator : IOperator
{
    /// <summary>Largest col buffer, in floats, before the output channels are split into slices (16 MiB).</summary>
    private const long ColumnBudget = 1 << 22;

    /// <summary>Scatters smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var w = context.Input(1);
        var b = context.OptionalInput(2);
        var plan = InferShape(context, x, w, b);
        var output = context.Output(0, x.ElementType, plan.OutputShape);
        if (output.ElementCount == 0) return;

        var scratch = new List<Tensor>();
        try
        {
            var xf = Layout.ToFloat32(context, x, "X", out var ownsX);
            if (ownsX) scratch.Add(xf);
            var wf = Layout.ToFloat32(context, w, "W", out var ownsW);
            if (ownsW) scratch.Add(wf);
            Tensor? bf = null;
            if (b is not null)
            {
                bf = Layout.ToFloat32(context, b, "B", out var ownsB);
                if (ownsB) scratch.Add(bf);
            }
            var result = output;
            if (output.ElementType != ElementType.Float32)
                scratch.Add(result = context.Scratch(ElementType.Float32, plan.OutputShape));
            Compute(context, plan, xf, wf, bf, result, scratch);
            if (result != output) Layout.FromFloat32(context, result, output);
        }
        finally
        {
            foreach (var tensor in scratch) tensor.Dispose();
        }
    }

    private static void Compute(OperatorContext context, ConvTransposePlan plan, Tensor x, Tensor w, Tensor? b, Tensor y, List<Tensor> scratch)
    {
        var n = plan.OutputShape[0];
        var outputChannels = plan.OutputShape[1];
        var (groups, cg, mg) = (plan.Groups, plan.GroupInputChannels, plan.GroupOutputChannels);
        var kernelPixels = plan.KernelHeight * plan.KernelWidth;
        var inputPixels = plan.InputHeight * plan.InputWidth;
        var outputPixels = (long)plan.OutputHeight * plan.OutputWidth;
        var rowsPerGroup = mg * kernelPixels;

        // Y starts as the bias.
        var yp = (float*)AxisHelper.Data(y);
        var bias = b is null ? default : b.Span<float>();
        for (var i = 0; i < n; i++)
            for (var m = 0; m < outputChannels; m++)
                new Span<float>(yp + ((long)i * outputChannels + m) * outputPixels, (int)outputPixels).Fill(bias.IsEmpty ? 0 : bias[m]);
        if (cg == 0 || inputPixels == 0) return;

        // Wᵀ per group: W is [group][C/group][M/group·kH·kW]; the matmul wants [group][M/group·kH·kW][C/group].
        var wt = w;
        if (cg > 1)
        {
            wt = context.Scratch(ElementType.Float32, [w.ElementCount]);
            scratch.Add(wt);
            Layout.NchwToNhwc<float>(w.Span<float>(), wt.Span<float>(), groups, cg, rowsPerGroup, context.Pool);
        }

        // Output channels per slice of the col buffer.
        var slice = (int)Math.Clamp(ColumnBudget / ((long)kernelPixels * inputPixels), 1, mg);
        var col = context.Scratch(ElementType.Float32, [slice * kernelPixels, inputPixels]);
        scratch.Add(col);
        var wp = (float*)AxisHelper.Data(wt);
        var xp = (float*)AxisHelper.Data(x);
        var cp = (float*)AxisHelper.Data(col);
        for (var i = 0; i < n; i++)
            for (var g = 0; g < groups; g++)
                for (var m0 = 0; m0 < mg; m0 += slice)
                {
                    var channels = Math.Min(slice, mg - m0);
                    var a = wp + ((long)g * rowsPerGroup + (long)m0 * kernelPixels) * cg;
                    var xg = xp + ((long)i * groups + g) * cg * inputPixels;
                    BatchMatMulKernel.Run(context.Pool, new BatchMatMulShape(1, channels * kernelPixels, cg, inputPixels), a, xg, cp);
                    var yFirst = yp + ((long)i * outputChannels + g * mg + m0) * outputPixels;
                    Col2Im(context, plan, cp, yFirst, channels);
                }
    }

    /// <summary>
    /// y[m, iy·sH − pT + ky·dH, ix·sW − pL + kx·dW] += col[m, ky, kx, iy, ix] for the <paramref name="channels"/>
    /// channels of a slice, positions outside Y skipped; one channel per task, so no two tasks write the same element.
    /// </summary>
    private static void Col2Im(OperatorContext context, ConvTransposePlan plan, float* col, float* y, int channels)
    {
        var (ih, iw, oh, ow) = (plan.InputHeight, plan.InputWidth, plan.OutputHeight, plan.OutputWidth);
        var (kh, kw) = (plan.KernelHeight, plan.KernelWidth);
        var (sh, sw, dh, dw, ph, pw) = (plan.StrideHeight, plan.StrideWidth, plan.DilationHeight, plan.DilationWidth,
            plan.PadTop, plan.PadLeft);
        var kernelPixels = kh * kw;
        var inputPixels = (long)ih * iw;
        var colPtr = (nint)col;
        var yPtr = (nint)y;
        void Channel(int m)
        {
            var plane = (float*)yPtr + (long)m * oh * ow;
            for (var ky = 0; ky < kh; ky++)
            {
                var (iy0, iy1) = Range(ih, oh, sh, ky * dh - ph);
                for (var kx = 0; kx < kw; kx++)
                {
                    var (ix0, ix1) = Range(iw, ow, sw, kx * dw - pw);
                    if (ix0 >= ix1) continue;
                    var source = (float*)colPtr + ((long)m * kernelPixels + ky * kw + kx) * inputPixels;
                    for (var iy = iy0; iy < iy1; iy++)
                    {
                        var s = source + (long)iy * iw;
                        var d = plane + (long)(iy * sh - ph + ky * dh) * ow + (kx * dw - pw);
                        if (sw == 1)
                        {
                            var run = new Span<float>(d + ix0, ix1 - ix0);
                            TensorPrimitives.Add(run, new ReadOnlySpan<float>(s + ix0, ix1 - ix0), run);
                        }
                        else
                        {
                            for (var ix = ix0; ix < ix1; ix++) d[(long)ix * sw] += s[ix];
                        }
                    }
                }
            }
        }
        if (channels * kernelPixels * inputPixels < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism == 1 || channels == 1)
            for (var m = 0; m < channels; m++) Channel(m);
        else
            Parallel.For(0, channels, context.Parallel, Channel);
    }

    /// <summary>The inputs i in [0, <paramref name="input"/>) whose i·stride + offset lands in [0, <paramref name="output"/>), as [first, end).</summary>
    private static (int First, int End) Range(int input, int output, int stride, int offset)
    {
        // i·stride + offset ≥ 0 and i·stride + offset ≤ output − 1.
        var first = offset >= 0 ? 0 : (-(long)offset + stride - 1) / stride;
        var last = (long)output - 1 - offset;
        var end = last < 0 ? 0 : Math.Min(input, last / stride + 1);
        return first >= end ? (0, 0) : ((int)first, (int)end);
    }

    /// <summary>What a ConvTranspose node computes, as 2-D geometry (a 1-D one has height 1), and the output shape.</summary>
    internal sealed record ConvTransposePlan(int Groups, int GroupInputChannels, int GroupOutputChannels,
        int InputHeight, int InputWidth, int OutputHeight, int OutputWidth, int KernelHeight, int KernelWidth,
        int StrideHeight, int StrideWidth, int DilationHeight, int DilationWidth, int PadTop, int PadLeft, int[] OutputShape);

    /// <summary>Checks the inputs and attributes and infers the output shape [N, M, (outH, )outW] and the padding.</summary>
    internal static ConvTransposePlan InferShape(OperatorContext context, Tensor x, Tensor w, Tensor? b)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16))
            throw context.Error($"X must be float32 or float16, not {x.ElementType}");
        if (w.ElementType is not (ElementType.Float32 or ElementType.Float16) && !(w.ElementType == ElementType.UInt8 && w.Quantization is not null))
            throw context.Error($"W must be float32, float16 or quantized uint8, not {w.ElementType}");
        var rank = x.Shape.Length;
        if (rank is not (3 or 4))
            throw context.Error($"X must be 3-D [N,C,L] or 4-D NCHW, got {AxisHelper.Format(x.Shape)} (only 1-D and 2-D transposed convolutions are supported)");
        var spatial = rank - 2;

        // W: [C, M/group, kH, kW], or [C, M/group, k] / [C, M/group, k, 1] for a 1-D one.
        var wShape = w.Shape;
        if (spatial == 1 && wShape.Length == 4 && wShape[3] == 1) wShape = wShape[..3];
        if (wShape.Length != rank)
            throw context.Error($"W must be {rank}-D like X {AxisHelper.Format(x.Shape)}, got {AxisHelper.Format(w.Shape)}");
        var kernel = wShape[2..];
        foreach (var k in kernel)
            if (k < 1) throw context.Error($"W {AxisHelper.Format(w.Shape)} has an empty kernel window");
        var kernelShape = context.Attributes.GetInts("kernel_shape");
        if (kernelShape is not null && !kernelShape.SequenceEqual(kernel.Select(k => (long)k)))
            throw context.Error($"kernel_shape {AxisHelper.Format(kernelShape)} does not match W {AxisHelper.Format(w.Shape)}");

        var channels = x.Shape[1];
        var group = context.Attributes.GetInt("group", 1);
        if (group < 1 || group > Math.Max(1, channels))
            throw context.Error($"group {group} must be between 1 and the {channels} input channels");
        if (wShape[0] != channels)
            throw context.Error($"W {AxisHelper.Format(w.Shape)} must have X's {channels} input channels in dimension 0");
        if (channels % group != 0)
            throw context.Error($"X's {channels} input channels are not divisible by group {group}");
        var outputChannels = (long)wShape[1] * group;
        if (outputChannels > int.MaxValue)
            throw context.Error($"W {AxisHelper.Format(w.Shape)} and group {group} give too many output channels");
        if (b is not null)
        {
            if (b.Shape.Length != 1 || b.Shape[0] != outputChannels)
                throw context.Error($"B must be 1-D [{outputChannels}], got {AxisHelper.Format(b.Shape)}");
            if (b.ElementType is not (ElementType.Float32 or ElementType.Float16) && !(b.ElementType == ElementType.UInt8 && b.Quantization is not null))
                throw context.Error($"B must be float32, float16 or quantized uint8, not {b.ElementType}");
        }

        var strides = ReadInts(context, "strides", spatial, 1, 1);
        var dilations = ReadInts(context, "dilations", spatial, 1, 1);
        var outputPadding = ReadInts(context, "output_padding", spatial, 0, 0);
        var autoPad = context.Attributes.GetString("auto_pad", "NOTSET");
        if (autoPad is not ("NOTSET" or "VALID" or "SAME_UPPER" or "SAME_LOWER"))
            throw context.Error($"auto_pad '{autoPad}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
        var pads = autoPad == "NOTSET" ? ReadInts(context, "pads", 2 * spatial, 0, 0) : new int[2 * spatial];
        var requested = context.Attributes.GetInts("output_shape");
        if (requested is not null && requested.Length != spatial)
            throw context.Error($"output_shape {AxisHelper.Format(requested)} must have {spatial} values, one per spatial dimension");

        var input = x.Shape[2..];
        var outputShape = new int[rank];
        outputShape[0] = x.Shape[0];
        outputShape[1] = (int)outputChannels;
        for (var i = 0; i < spatial; i++)
        {
            // The extent of the full scatter, before padding is cut off.
            var full = (input[i] - 1L) * strides[i] + outputPadding[i] + (kernel[i] - 1L) * dilations[i] + 1;
            long size;
            if (requested is not null || autoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                var target = requested is not null ? requested[i] : (long)input[i] * strides[i];
                if (target < 0)
                    throw context.Error($"output_shape {AxisHelper.Format(requested!)} must not be negative");
                var total = Math.Max(0, full - target);
                // The odd element of padding goes at the end for SAME_UPPER, else at the beginning.
                var head = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                pads[i] = (int)head;
                pads[spatial + i] = (int)(total - head);
                size = requested is not null ? target : full - total;
            }
            else
            {
                size = full - pads[i] - pads[spatial + i];
            }
            if (size < 1 || size > int.MaxValue)
                throw context.Error($"output spatial dimension {i} would be {size} (X {AxisHelper.Format(x.Shape)}, W {AxisHelper.Format(w.Shape)}, pads {AxisHelper.Format(pads)})");
            // As ONNX Runtime: the Conv this transposes must map the output back to X's size, which bounds
            // output_padding (and an output_shape beyond the full scatter) to less than the stride.
            var extent = size + pads[i] + pads[spatial + i] - ((kernel[i] - 1L) * dilations[i] + 1);
            var convolved = (extent >= 0 ? extent / strides[i] : -((-extent + strides[i] - 1) / strides[i])) + 1;
            if (convolved != input[i])
                throw context.Error($"output spatial dimension {i} of size {size} is inconsistent with X's {input[i]} (a convolution with this kernel, stride {strides[i]} and pads would give {convolved}): output_padding or output_shape is too large for the stride");
            outputShape[2 + i] = (int)size;
        }

        int At(int[] values, int index, int fallback) => spatial == 2 ? values[index] : index == 0 ? fallback : values[0];
        return new ConvTransposePlan((int)group, channels / (int)group, wShape[1],
            InputHeight: spatial == 2 ? input[0] : 1, InputWidth: input[^1],
            OutputHeight: spatial == 2 ? outputShape[2] : 1, OutputWidth: outputShape[^1],
            KernelHeight: At(kernel, 0, 1), KernelWidth: At(kernel, 1, 1),
            StrideHeight: At(strides, 0, 1), StrideWidth: At(strides, 1, 1),
            DilationHeight: At(dilations, 0, 1), DilationWidth: At(dilations, 1, 1),
            PadTop: spatial == 2 ? pads[0] : 0, PadLeft: pads[spatial - 1], outputShape);
    }

    /// <summary>An optional ints attribute of <paramref name="count"/> values, each at least <paramref name="min"/>.</summary>
    private static int[] ReadInts(OperatorContext context, string name, int count, int fallback, int min)
    {
        var values = context.Attributes.GetInts(name);
        var result = new int[count];
        if (values is null)
        {
            Array.Fill(result, fallback);
            return result;
        }
        if (values.Length != count)
            throw context.Error($"{name} has {values.Length} values {AxisHelper.Format(values)}; {count} expected");
        for (var i = 0; i < count; i++)
        {
            if (values[i] < min || values[i] > int.MaxValue / 4)
                throw context.Error($"{name} {AxisHelper.Format(values)} must be {(min == 0 ? "non-negative" : "positive")}");
            result[i] = (int)values[i];
        }
        return result;
    }
}
