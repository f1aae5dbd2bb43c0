using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Conv, 1-D and 2-D: X [N,C,(H,)W], W [M,C/group,(kH,)kW], optional B [M]. Runs XNNPACK's NHWC
/// convolution between NCHW ↔ NHWC transposes, in float32: float16 activations are widened and the
/// result rounded back; float16 or quantized uint8 weights and biases (fp16/uint8 model folders) reach it as
/// stored and are widened/dequantized one block of channels at a time (see <see cref="ConvolutionBlocks"/>). With <see cref="OperatorContext.Float16Kernels"/> a float16 X runs XNNPACK's
/// float16 convolution instead (weights narrowed to float16). Under static activation quantization a quantized
/// X with a uint8 W runs XNNPACK's uint8 convolution straight into a uint8 output (see <see cref="QuantizedOperands"/>);
/// a float16 W computed in float32 runs the shim's direct convolution instead (see <see cref="DirectConvolution"/>);
/// a quantized X otherwise is dequantized. A 1-D convolution is a 2-D one of height 1; its weights may carry the trailing
/// dimension of 1 that the original converter adds ([M,C/group,k,1]).
/// </summary>
internal sealed class ConvOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var w = context.Input(1);
        var b = context.OptionalInput(2);
        var plan = InferShape(context, x, w, b);
        if (QuantizedOperands.ForProduct(context, x, w) is { } outputQuantization)
        {
            // XNNPACK's uint8 convolution packs the whole kernel: one left unread is read whole.
            using var whole = context.WeightReader(1) is not null ? context.ReadWhole(1) : null;
            ConvolveQUInt8(context, plan, x, whole ?? w, b, outputQuantization);
            return;
        }
        var outputType = x.ElementType == ElementType.Float16 ? ElementType.Float16 : ElementType.Float32;
        if (Shapes.ElementCount(plan.OutputShape) == 0 || context.InfersShapes)
            context.Output(0, outputType, plan.OutputShape);
        else if (DirectConvolution.Applies(context, plan, x, w))
            DirectConvolution.Run(context, plan, x, w, b, outputType);
        else if (context.Float16Kernels && x.ElementType == ElementType.Float16)
            Convolve<Half>(context, plan, x, w, b, outputType);
        else
        {
            // XNNPACK clamps its result to [-inf, +inf], which turns NaN into -inf: put the NaN back, as ONNX Runtime has it
            // (an X holding NaN and infinities may also have true -inf results: they become NaN too, still non-finite).
            var nan = x.ElementType == ElementType.Float32 && NonFiniteScan.HasNaN(x.Span<float>(), context.Pool.ThreadCount);
            Convolve<float>(context, plan, x, w, b, outputType);
            if (nan && outputType == ElementType.Float32) NonFiniteScan.NegativeInfinityToNaN(context.Outputs[0]!.Span<float>());
        }
    }

    /// <summary>
    /// The convolution computed in <typeparamref name="T"/> (float or Half), between NCHW ↔ NHWC transposes, in blocks
    /// of input and output channels (see <see cref="ConvolutionBlocks"/>).
    /// </summary>
    private static void Convolve<T>(OperatorContext context, ConvPlan plan, Tensor x, Tensor w, Tensor? b, ElementType outputType) where T : unmanaged
    {
        var type = ElementTypes.Of<T>();
        var g = plan.Geometry;
        var n = x.Shape[0];
        var inputChannels = g.InputChannels;
        var outputChannels = g.OutputChannels;
        var inputPixels = plan.InputHeight * plan.InputWidth;
        var outputPixels = g.OutputHeight(plan.InputHeight) * g.OutputWidth(plan.InputWidth);

        // With the Ram provider every block is packed once and kept for later runs (when W and B are weights);
        // otherwise each block is packed just before it runs, within the weight slice budget.
        var keep = context.KeepsPreparedOperators && context.IsWeight(1) && (b is null || context.IsWeight(2));
        var owned = true;
        ConvolutionBlocks Pack()
        {
            var packed = ConvolutionBlocks.Plan<T>(g, long.MaxValue, keep: true);
            try
            {
                packed.PackAll<T>(context, w, b);
                return packed;
            }
            catch
            {
                packed.Dispose();
                throw;
            }
        }
        // Blocks packed per run are packed one per thread at once: each gets its share of the weight slice budget. A kernel
        // left unread by the session is read an output block at a time.
        var reader = context.WeightReader(1);
        var blockBytes = ChannelBlocks.SliceBytesPerThread(context);
        var storedElementSize = reader is null ? 0 : w.ElementType.Size();
        var blocks = keep && reader is null ? context.Prepare(Pack, out owned) : ConvolutionBlocks.Plan<T>(g, blockBytes, keep: false, storedElementSize);
        if (!owned && (blocks.Geometry != g || blocks.DataType != KernelDataTypes.Of<T>()))
        {
            // SAME padding follows the input's size: kept blocks are only good for the geometry they were packed with.
            blocks = ConvolutionBlocks.Plan<T>(g, blockBytes, keep: false);
            owned = true;
        }
        // NHWC straight into the output when that is also NCHW and of the compute type; otherwise the output is
        // allocated last, once X's NHWC copy is gone (the copy, the NHWC result and the output never coexist).
        var direct = outputType == type && (outputChannels == 1 || outputPixels == 1);
        var output = direct ? context.Output(0, outputType, plan.OutputShape) : null;
        Tensor? nhwcIn = null, nhwcOut = null;
        try
        {
            // An X of the compute type that dies here, split into input blocks, is rearranged in place (no NHWC copy: the
            // largest scratch of a UNet's 64×64 convolutions), a block of channels at a time.
            bool ownsIn;
            if (owned && blocks.InputBlocks > 1 && x.ElementType == type && inputPixels > 1 && context.InputDies(0))
            {
                blocks.ChannelBlockedInput = true;
                blocks.ToChannelBlocks<T>(context, x, n, inputPixels);
                (nhwcIn, ownsIn) = (x, false);
            }
            else nhwcIn = ToNhwc<T>(context, x, n, inputChannels, inputPixels, out ownsIn);
            nhwcOut = output ?? context.Scratch(type, [checked((int)Shapes.ElementCount(plan.OutputShape))]);
            blocks.Run(context, n, plan.InputHeight, plan.InputWidth, nhwcIn.Buffer<T>(), nhwcOut.Buffer<T>(), w, reader, b);
            if (ownsIn) nhwcIn.Dispose();
            nhwcIn = null;
            if (!direct) FromNhwc<T>(context, nhwcOut, context.Output(0, outputType, plan.OutputShape), n, outputChannels, outputPixels);
        }
        finally
        {
            if (nhwcIn is not null && nhwcIn != x) nhwcIn.Dispose();
            if (nhwcOut is not null && nhwcOut != output) nhwcOut.Dispose();
            if (owned) blocks.Dispose();
        }
    }

    /// <inheritdoc />
    /// <remarks>W and B as stored (float16 in fp16 folders): only one block of the kernel is converted at a time.</remarks>
    public bool TakesStoredWeight(int index) => index is 1 or 2;

    /// <inheritdoc />
    /// <remarks>A large W is read an output block (its contiguous OIHW rows) at a time.</remarks>
    public bool ReadsWeightSlices(int index) => index == 1;

    /// <inheritdoc />
    /// <remarks>
    /// Three phases: X and its NHWC copy; then (X freed when it dies here) the copy, the NHWC result and, when the kernel is
    /// split into input blocks, a partial-sum buffer of the result's size; then the NHWC result and the output, allocated
    /// last. A float32 X split into input blocks that dies here has no copy: it is rearranged in place through one block's
    /// scratch, and held to the end. Kernel blocks are a few MB and not counted. The output is counted by the caller, so
    /// this may be negative.
    /// </remarks>
    public long ScratchBytes(Graph.GraphNode node, Func<Graph.TensorDescriptor, long> bytes, Func<int, bool> inputDies)
    {
        if (node.Inputs is not [{ } x, { } w, ..] || node.Outputs.Length != 1 || w.Shape.Length < 3 || x.Shape.Length < 3) return 0;
        var output = bytes(node.Outputs[0]);
        if (DirectConvolution.Applies(node, w))
        {
            // The padded float32 copy of X beside X, then beside the output (a float16 output's float32 blocks are within
            // the weight slice budget, like the kernel blocks, and not counted).
            var prepared = DirectConvolution.PreparedBytes(node, x);
            return Math.Max(prepared, prepared - (inputDies(0) ? bytes(x) : 0) + output) - output;
        }
        var window = w.Shape[2..].Aggregate(1L, (a, d) => a * d);
        var split = w.Shape[1] * window > ConvolutionBlocks.InputBlockElements;
        var partial = split ? output : 0;
        if (split && inputDies(0) && (x.ActivationType ?? ElementType.Float32) == ElementType.Float32)
        {
            var block = bytes(x) / x.Shape[1] * ChannelBlocks.Size(x.Shape[1], Math.Max(1, ConvolutionBlocks.InputBlockElements / window));
            return Math.Max(block, output + partial) - output;
        }
        var (copy, freed) = (bytes(x), inputDies(0) ? bytes(x) : 0);
        return Math.Max(copy, Math.Max(copy - freed + output + partial, output + output - freed)) - output;
    }

    /// <inheritdoc />
    public bool TakesQuantized(int index) => index is 0 or 1;

    /// <summary>The convolution in uint8: X, W and the output quantized, the bias in int32, between NCHW ↔ NHWC transposes.</summary>
    private static void ConvolveQUInt8(OperatorContext context, ConvPlan plan, Tensor x, Tensor w, Tensor? b, Quantization outputQuantization)
    {
        var output = context.Output(0, ElementType.UInt8, plan.OutputShape, outputQuantization);
        if (output.ElementCount == 0) return;
        var g = plan.Geometry;
        var n = x.Shape[0];
        var inputQuantization = x.Quantization!.Value;
        Convolution2dOperator Create() => CreateQUInt8Convolution(context, g, inputQuantization, w, b, outputQuantization);
        var owned = true;
        var convolution = context.IsWeight(1) && (b is null || context.IsWeight(2)) ? context.Prepare(Create, out owned) : Create();
        if (!owned && (convolution.Geometry != g || convolution.DataType != KernelDataType.QUInt8))
        {
            convolution = Create();
            owned = true;
        }
        try
        {
            using var nhwcIn = context.Scratch(ElementType.UInt8, [x.ElementCount]);
            Layout.NchwToNhwc<byte>(x.Span<byte>(), nhwcIn.Span<byte>(), n, g.InputChannels, plan.InputHeight * plan.InputWidth, context.Pool);
            using var nhwcOut = context.Scratch(ElementType.UInt8, [output.ElementCount]);
            convolution.Run(context.Pool, n, plan.InputHeight, plan.InputWidth, nhwcIn.Buffer<byte>(), nhwcOut.Buffer<byte>());
            var outputPixels = g.OutputHeight(plan.InputHeight) * g.OutputWidth(plan.InputWidth);
            Layout.NhwcToNchw<byte>(nhwcOut.Span<byte>(), output.Span<byte>(), n, g.OutputChannels, outputPixels, context.Pool);
        }
        finally
        {
            if (owned) convolution.Dispose();
        }
    }

    /// <summary>Packs the uint8 W (OIHW, turned OHWI) and B (as int32) into an XNNPACK uint8 convolution.</summary>
    private static Convolution2dOperator CreateQUInt8Convolution(OperatorContext context, Convolution2dGeometry g, Quantization input,
        Tensor w, Tensor? b, Quantization output)
    {
        var kernelQuantization = w.Quantization!.Value;
        using var kernel = context.Scratch(ElementType.UInt8, [w.ElementCount]);
        Layout.NchwToNhwc<byte>(w.Span<byte>(), kernel.Span<byte>(), g.OutputChannels, g.GroupInputChannels, g.KernelHeight * g.KernelWidth, context.Pool);
        using var bias = QuantizedOperands.Bias(context, b, (double)input.Scale * kernelQuantization.Scale);
        return Convolution2dOperator.CreateQUInt8(g, input, kernelQuantization, kernel.Span<byte>(),
            bias is null ? default : bias.Span<int>(), output);
    }

    /// <summary>
    /// X (NCHW, float32 or float16) as NHWC <typeparamref name="T"/>: transposed in its own type first, then
    /// converted, so a float16 X never has a float32 NCHW copy besides the NHWC one; X is freed once transposed when
    /// it dies with this operation. <paramref name="owned"/>: the result is a scratch tensor (not X itself).
    /// </summary>
    private static Tensor ToNhwc<T>(OperatorContext context, Tensor x, int n, int channels, int pixels, out bool owned) where T : unmanaged
    {
        var transpose = channels > 1 && pixels > 1;
        if (!transpose) return Layout.ToType<T>(context, x, "X", out owned);
        Tensor transposed;
        if (x.ElementType == ElementType.Float16)
        {
            transposed = context.Scratch(ElementType.Float16, [x.ElementCount]);
            Layout.NchwToNhwc<Half>(x.Span<Half>(), transposed.Span<Half>(), n, channels, pixels, context.Pool);
        }
        else
        {
            var xf = Layout.ToFloat32(context, x, "X", out var ownsX);
            try
            {
                transposed = context.Scratch(ElementType.Float32, [x.ElementCount]);
                Layout.NchwToNhwc<float>(xf.Span<float>(), transposed.Span<float>(), n, channels, pixels, context.Pool);
            }
            finally
            {
                if (ownsX) xf.Dispose();
            }
        }
        // The transposed copy is all the convolution reads: X goes now if nothing after this operation reads it
        // (before a float16 copy is widened, so that X, its copy and the wide copy never coexist).
        context.ReleaseInput(0);
        var converted = Layout.ToType<T>(context, transposed, "X", out var ownsConverted);
        if (ownsConverted) transposed.Dispose();
        owned = true;
        return converted;
    }

    /// <summary>The NHWC <typeparamref name="T"/> result into the NCHW output: rounded to float16 first when the output is float16, then transposed.</summary>
    private static void FromNhwc<T>(OperatorContext context, Tensor nhwc, Tensor output, int n, int channels, int pixels) where T : unmanaged
    {
        var source = nhwc;
        if (nhwc.ElementType != output.ElementType)
        {
            source = context.Scratch(output.ElementType, [nhwc.ElementCount]);
            Layout.FromFloat32(context, nhwc, source);
        }
        try
        {
            if (channels == 1 || pixels == 1) AxisHelper.CopyAll(context, source, output);
            else if (output.ElementType == ElementType.Float16)
                Layout.NhwcToNchw<Half>(source.Span<Half>(), output.Span<Half>(), n, channels, pixels, context.Pool);
            else
                Layout.NhwcToNchw<float>(source.Span<float>(), output.Span<float>(), n, channels, pixels, context.Pool);
        }
        finally
        {
            if (source != nhwc) source.Dispose();
        }
    }

    /// <summary>What a Conv node computes: the XNNPACK geometry, the input's 2-D size and the NCHW output shape.</summary>
    internal sealed record ConvPlan(Convolution2dGeometry Geometry, int InputHeight, int InputWidth, int[] OutputShape);

    /// <summary>Checks the inputs and attributes and infers the output shape [N, M, (outH,) outW].</summary>
    internal static ConvPlan InferShape(OperatorContext context, Tensor x, Tensor w, Tensor? b)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16) && !QuantizedOperands.IsQuantized(x))
            throw context.Error($"X must be float32 or float16, not {x.ElementType}");
        var rank = x.Shape.Length;
        if (rank is not (3 or 4))
            throw context.Error($"X must be 3-D [N,C,L] or 4-D NCHW, got {AxisHelper.Format(x.Shape)} (only 1-D and 2-D convolutions are supported)");
        var spatial = rank - 2;

        // W: [M, C/group, kH, kW], or [M, C/group, k] / [M, C/group, k, 1] for a 1-D convolution.
        var wShape = w.Shape;
        if (spatial == 1 && wShape.Length == 4 && wShape[3] == 1) wShape = wShape[..3];
        if (wShape.Length != rank)
            throw context.Error($"W must be {rank}-D like X {AxisHelper.Format(x.Shape)}, got {AxisHelper.Format(w.Shape)}");
        var kernel = wShape[2..];

        var kernelShape = context.Attributes.GetInts("kernel_shape");
        if (kernelShape is not null && !kernelShape.SequenceEqual(kernel.Select(k => (long)k)))
            throw context.Error($"kernel_shape {AxisHelper.Format(kernelShape)} does not match W {AxisHelper.Format(w.Shape)}");

        var group = context.Attributes.GetInt("group", 1);
        var channels = x.Shape[1];
        var outputChannels = wShape[0];
        if (group < 1 || group > channels)
            throw context.Error($"group {group} must be between 1 and the {channels} input channels");
        if (channels % group != 0 || wShape[1] != channels / group)
            throw context.Error($"X has {channels} channels and group is {group}, so W {AxisHelper.Format(w.Shape)} needs {(channels % group == 0 ? channels / group : "a whole number of")} input channels per group (dimension 1)");
        if (outputChannels % group != 0)
            throw context.Error($"W's {outputChannels} output channels are not divisible by group {group}");
        if (b is not null && (b.Shape.Length != 1 || b.Shape[0] != outputChannels))
            throw context.Error($"B must be 1-D [{outputChannels}], got {AxisHelper.Format(b.Shape)}");
        foreach (var k in kernel)
            if (k < 1) throw context.Error($"W {AxisHelper.Format(w.Shape)} has an empty kernel window");

        var input = x.Shape[2..];
        var outputSpatial = Layout.WindowGeometry(context, input, kernel, false, out var pads, out var strides, out var dilations);

        // 1-D: height 1, the sequence is the width.
        int At(int[] values, int i, int fallback) => spatial == 2 ? values[i] : i == 0 ? fallback : values[0];
        var geometry = new Convolution2dGeometry(
            KernelHeight: At(kernel, 0, 1), KernelWidth: At(kernel, 1, 1),
            GroupInputChannels: wShape[1], GroupOutputChannels: outputChannels / (int)group, Groups: (int)group,
            StrideHeight: At(strides, 0, 1), StrideWidth: At(strides, 1, 1),
            DilationHeight: At(dilations, 0, 1), DilationWidth: At(dilations, 1, 1),
            PaddingTop: spatial == 2 ? pads[0] : 0, PaddingLeft: spatial == 2 ? pads[1] : pads[0],
            PaddingBottom: spatial == 2 ? pads[2] : 0, PaddingRight: spatial == 2 ? pads[3] : pads[1]);

        var outputShape = new int[rank];
        outputShape[0] = x.Shape[0];
        outputShape[1] = outputChannels;
        outputSpatial.CopyTo(outputShape, 2);
        return new ConvPlan(geometry, spatial == 2 ? input[0] : 1, input[^1], outputShape);
    }
}
