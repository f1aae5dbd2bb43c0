using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// Conv with a float16 W (fp16 model folders) computed in float32 on the shim's direct convolution
/// (<see cref="DirectConvolutionKernel"/>): W is used as stored, an OHWI block of output channels at a time, with no
/// widened float32 copy and no XNNPACK packing. Packing was what a streamed convolution spent most of its time on:
/// for the SD 1.5 UNet's 2560-channel 3×3 convolution at 8×8, XNNPACK took 180 ms per run with packing, 36 ms with
/// the packed kernel kept; this path takes about 20 (AVX-512, 2 threads), and about as long as XNNPACK on the large
/// images too. With the Ram provider the OHWI kernel is made once and kept (float16: half of XNNPACK's packed float32).
/// </summary>
internal static unsafe class DirectConvolution
{
    /// <summary>Whether Conv takes this path: W stored as float16, a geometry the kernel computes, float32 arithmetic.</summary>
    public static bool Applies(OperatorContext context, ConvOperator.ConvPlan plan, Tensor x, Tensor w) =>
        w.ElementType == ElementType.Float16 && DirectConvolutionKernel.Supports(plan.Geometry) &&
        !(context.Float16Kernels && x.ElementType == ElementType.Float16);

    /// <summary>Whether a Conv node takes this path, from its descriptors (for memory planning).</summary>
    public static bool Applies(Graph.GraphNode node, Graph.TensorDescriptor w) =>
        w.WeightType == ElementType.Float16 && node.Attributes.GetInt("group", 1) == 1 &&
        w.Shape.Length >= 3 && w.Shape[2..].Aggregate(1L, (a, d) => a * d) <= DirectConvolutionKernel.MaxTaps;

    /// <summary>Bytes of the prepared (zero-padded NHWC float32) copy of a Conv node's input X, for memory planning.</summary>
    public static long PreparedBytes(Graph.GraphNode node, Graph.TensorDescriptor x)
    {
        if (x.Shape is not [var n, var c, .. var spatial] || spatial.Length is not (1 or 2)) return 0;
        // pads: [top, left, bottom, right] for 2-D, [left, right] for 1-D (auto_pad SAME pads at most the kernel's size).
        var pads = node.Attributes.GetInts("pads") ?? [];
        long Pad(int begin, int end) => pads.Length > end ? pads[begin] + pads[end] : 0;
        var (height, width) = spatial.Length == 2 ? (spatial[0] + Pad(0, 2), spatial[1] + Pad(1, 3)) : (1, spatial[0] + Pad(0, 1));
        return n * height * width * ((c + 15L) / 16 * 16) * sizeof(float);
    }

    /// <summary>
    /// Runs the convolution: X copied into the padded float32 layout (and freed when it dies here), then the output
    /// written a block of output channels at a time from that block's OHWI kernel rows: the kept kernel's (Ram provider),
    /// or the block's OIHW rows (read from the file for a streamed W, else W's) transposed unless the kernel is 1×1. A
    /// float16 output is computed a block at a time in a float32 scratch and rounded into place.
    /// </summary>
    public static void Run(OperatorContext context, ConvOperator.ConvPlan plan, Tensor x, Tensor w, Tensor? b, ElementType outputType)
    {
        var g = plan.Geometry;
        var (n, height, width) = (x.Shape[0], plan.InputHeight, plan.InputWidth);
        Tensor? prepared = null, bias = null, kept = null;
        bool ownsBias = false, ownsKept = false;
        try
        {
            prepared = context.Scratch(ElementType.Float32, [checked((int)DirectConvolutionKernel.PreparedInputLength(g, n, height, width))]);
            if (x.ElementType == ElementType.Float16)
                DirectConvolutionKernel.PrepareInput(context.Pool, g, n, height, width, x.Buffer<Half>(), prepared.Buffer<float>());
            else
            {
                var xf = Layout.ToFloat32(context, x, "X", out var ownsX);
                try
                {
                    DirectConvolutionKernel.PrepareInput(context.Pool, g, n, height, width, xf.Buffer<float>(), prepared.Buffer<float>());
                }
                finally
                {
                    if (ownsX) xf.Dispose();
                }
            }
            context.ReleaseInput(0);

            var output = context.Output(0, outputType, plan.OutputShape);
            if (b is not null) bias = Layout.ToType<float>(context, b, "B", out ownsBias);
            var reader = context.WeightReader(1);
            var taps = g.KernelHeight * g.KernelWidth;
            var rowBytes = (long)g.InputChannels * taps * sizeof(Half);
            long limit = int.MaxValue;
            if (context.KeepsPreparedOperators && context.IsWeight(1) && reader is null)
                // Ram provider: the OHWI kernel is made once and kept with the session.
                kept = context.Prepare(() => ToOhwi(context, w, AxisHelper.Data(w), g.OutputChannels), out ownsKept);
            else
                // The block's rows read from the file and their OHWI copy share the weight slice budget.
                limit = context.WeightSliceBytes / Math.Max(1, (reader is not null ? 1 : 0) + (taps > 1 ? 1 : 0)) / rowBytes;
            var pixels = (long)plan.OutputShape.Skip(2).Aggregate(1, (a, d) => a * d);
            // A float16 output's float32 block: at most an eighth of its channels (a quarter of its bytes), within the budget.
            if (outputType != ElementType.Float32)
                limit = Math.Min(limit, Math.Min(g.OutputChannels / 8, context.WeightSliceBytes / (n * pixels * sizeof(float))));
            var block = ChannelBlocks.Size(g.OutputChannels, limit);
            var rowLength = (int)(rowBytes / sizeof(Half));
            // One buffer for a block's rows read from the file, one for their OHWI transpose and one for a float16 output's
            // float32 block, each reused by every block (fresh memory costs page faults).
            using var rowsBuffer = kept is null && reader is not null ? context.Scratch(ElementType.Float16, [block, rowLength]) : null;
            using var ohwiBuffer = kept is null && taps > 1 ? context.Scratch(ElementType.Float16, [block, rowLength]) : null;
            using var wide = outputType != ElementType.Float32 ? context.Scratch(ElementType.Float32, [checked((int)(n * block * pixels))]) : null;
            for (var o0 = 0; o0 < g.OutputChannels; o0 += block)
            {
                var outputs = Math.Min(block, g.OutputChannels - o0);
                var ohwi = BlockKernel(context, kept ?? w, reader, rowsBuffer, ohwiBuffer, o0, outputs, taps);
                var blockBias = bias is null ? default : bias.Span<float>().Slice(o0, outputs);
                if (wide is null)
                {
                    DirectConvolutionKernel.Run(context.Pool, g, n, height, width, prepared.Buffer<float>(), o0, outputs, ohwi, blockBias,
                        output.Buffer<float>());
                    continue;
                }
                // The block's channels as a convolution of their own into the float32 scratch, then rounded into each image.
                DirectConvolutionKernel.Run(context.Pool, g with { GroupOutputChannels = outputs }, n, height, width, prepared.Buffer<float>(), 0,
                    outputs, ohwi, blockBias, wide.Buffer<float>());
                var imageLength = (int)(outputs * pixels);
                for (var image = 0; image < n; image++)
                    System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(wide.Span<float>().Slice(image * imageLength, imageLength),
                        output.Span<Half>().Slice(checked((int)((image * (long)g.OutputChannels + o0) * pixels)), imageLength));
            }
        }
        finally
        {
            prepared?.Dispose();
            if (ownsBias) bias!.Dispose();
            if (ownsKept) kept!.Dispose();
        }
    }

    /// <summary>
    /// The OHWI rows of output channels <paramref name="o0"/>.. (<paramref name="outputs"/> of them): of the kept OHWI kernel
    /// <paramref name="w"/> (no OIHW rows buffer then), or W's OIHW rows (read from the file into <paramref name="rows"/>
    /// with <paramref name="reader"/>) transposed into <paramref name="ohwi"/> unless the kernel is 1×1.
    /// </summary>
    private static NativeBuffer<Half> BlockKernel(OperatorContext context, Tensor w, Weights.WeightSliceReader? reader, Tensor? rows,
        Tensor? ohwi, int o0, int outputs, int taps)
    {
        var rowLength = (int)(w.ElementCount / w.Shape[0]);
        var rowBytes = (long)rowLength * sizeof(Half);
        byte* source;
        if (reader is not null && rows is not null)
        {
            source = AxisHelper.Data(rows);
            reader.Read(o0 * rowBytes, new Span<byte>(source, checked((int)(outputs * rowBytes))));
        }
        else source = AxisHelper.Data(w) + o0 * rowBytes;
        if (ohwi is not null)
        {
            TransposeRows(context, source, outputs, rowLength, taps, AxisHelper.Data(ohwi));
            source = AxisHelper.Data(ohwi);
        }
        return NativeBuffer<Half>.Wrap((Half*)source, outputs * rowLength);
    }

    /// <summary>
    /// The OHWI float16 kernel of <paramref name="outputs"/> OIHW rows at <paramref name="rows"/>: a transposed copy, or a
    /// view of the rows for a 1×1 kernel (disposing a view frees nothing).
    /// </summary>
    private static Tensor ToOhwi(OperatorContext context, Tensor w, byte* rows, int outputs)
    {
        var (channels, taps) = (w.Shape[1], w.Shape[2..].Aggregate(1, (a, d) => a * d));
        if (taps == 1) return Tensor.Wrap(ElementType.Float16, [outputs, channels], rows);
        var ohwi = context.Scratch(ElementType.Float16, [outputs, taps * channels]);
        TransposeRows(context, rows, outputs, taps * channels, taps, AxisHelper.Data(ohwi));
        return ohwi;
    }

    /// <summary>Each of <paramref name="outputs"/> float16 OIHW kernel rows ([C][taps]) as an OHWI row ([taps][C]) at <paramref name="ohwi"/>.</summary>
    private static void TransposeRows(OperatorContext context, byte* rows, int outputs, int rowLength, int taps, byte* ohwi) =>
        TransposeKernel.Run(context.Pool, sizeof(Half), outputs, rowLength / taps, taps, rows, 0, ohwi);
}
