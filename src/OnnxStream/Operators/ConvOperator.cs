using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Conv, 1-D and 2-D: X [N,C,(H,)W], W [M,C/group,(kH,)kW], optional B [M]. Runs XNNPACK's NHWC
/// convolution between NCHW ↔ NHWC transposes, in float32: float16 activations are widened and the
/// result rounded back; float16 or quantized uint8 weights and biases (fp16/uint8 model folders) are
/// widened/dequantized. A 1-D convolution is a 2-D one of height 1; its weights may carry the trailing
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
        var output = context.Output(0, x.ElementType, plan.OutputShape);
        if (output.ElementCount == 0) return;

        var g = plan.Geometry;
        var n = x.Shape[0];
        var inputChannels = g.InputChannels;
        var outputChannels = g.OutputChannels;
        var inputPixels = plan.InputHeight * plan.InputWidth;
        var outputPixels = g.OutputHeight(plan.InputHeight) * g.OutputWidth(plan.InputWidth);

        // With the Ram provider the packed kernel is kept for later runs (when W and B are weights).
        var cacheable = context.IsWeight(1) && (b is null || context.IsWeight(2));
        var owned = true;
        var convolution = cacheable
            ? context.Prepare(() => CreateConvolution(context, g, w, b), out owned)
            : CreateConvolution(context, g, w, b);
        if (!owned && convolution.Geometry != g)
        {
            // SAME padding follows the input's size: a kept operator is only good for the geometry it was packed with.
            convolution = CreateConvolution(context, g, w, b);
            owned = true;
        }
        var scratch = new List<Tensor>();
        try
        {
            // Input: NCHW (float32) → NHWC.
            var xf = Layout.ToFloat32(context, x, "X", out var ownsX);
            if (ownsX) scratch.Add(xf);
            var nhwcIn = xf;
            if (inputChannels > 1 && inputPixels > 1)
            {
                nhwcIn = Track(scratch, context.Scratch(ElementType.Float32, [xf.ElementCount]));
                Layout.NchwToNhwc<float>(xf.Span<float>(), nhwcIn.Span<float>(), n, inputChannels, inputPixels, context.Parallel);
            }

            // Output: NHWC straight into the output when that is also NCHW and float32.
            var direct = output.ElementType == ElementType.Float32 && (outputChannels == 1 || outputPixels == 1);
            var nhwcOut = direct ? output : Track(scratch, context.Scratch(ElementType.Float32, [output.ElementCount]));

            convolution.Run(context.Pool, n, plan.InputHeight, plan.InputWidth, nhwcIn.Buffer<float>(), nhwcOut.Buffer<float>());

            if (direct) return;
            if (output.ElementType == ElementType.Float32)
            {
                Layout.NhwcToNchw<float>(nhwcOut.Span<float>(), output.Span<float>(), n, outputChannels, outputPixels, context.Parallel);
                return;
            }
            // float16 output: transpose unless it is the identity, then round.
            var nchw = nhwcOut;
            if (outputChannels > 1 && outputPixels > 1)
            {
                nchw = Track(scratch, context.Scratch(ElementType.Float32, [output.ElementCount]));
                Layout.NhwcToNchw<float>(nhwcOut.Span<float>(), nchw.Span<float>(), n, outputChannels, outputPixels, context.Parallel);
            }
            Layout.FromFloat32(context, nchw, output);
        }
        finally
        {
            foreach (var tensor in scratch) tensor.Dispose();
            if (owned) convolution.Dispose();
        }
    }

    /// <summary>Packs W (OIHW, widened to float32 and turned OHWI) and B into an XNNPACK convolution.</summary>
    private static Convolution2dOperator CreateConvolution(OperatorContext context, Convolution2dGeometry g, Tensor w, Tensor? b)
    {
        var kernelPixels = g.KernelHeight * g.KernelWidth;
        var scratch = new List<Tensor>();
        try
        {
            // OIHW → OHWI (the same memory when the window is 1×1 or there is one input channel per group).
            var wf = Layout.ToFloat32(context, w, "W", out var ownsW);
            if (ownsW) scratch.Add(wf);
            var kernel = wf;
            if (kernelPixels > 1 && g.GroupInputChannels > 1)
            {
                kernel = Track(scratch, context.Scratch(ElementType.Float32, [wf.ElementCount]));
                Layout.NchwToNhwc<float>(wf.Span<float>(), kernel.Span<float>(), g.OutputChannels, g.GroupInputChannels, kernelPixels, context.Parallel);
            }
            Tensor? bias = null;
            if (b is not null)
            {
                bias = Layout.ToFloat32(context, b, "B", out var ownsB);
                if (ownsB) scratch.Add(bias);
            }
            return Convolution2dOperator.CreateFloat32(g, kernel.Span<float>(), bias is null ? default : bias.Span<float>());
        }
        finally
        {
            foreach (var tensor in scratch) tensor.Dispose();
        }
    }

    private static Tensor Track(List<Tensor> scratch, Tensor tensor)
    {
        scratch.Add(tensor);
        return tensor;
    }

    /// <summary>What a Conv node computes: the XNNPACK geometry, the input's 2-D size and the NCHW output shape.</summary>
    internal sealed record ConvPlan(Convolution2dGeometry Geometry, int InputHeight, int InputWidth, int[] OutputShape);

    /// <summary>Checks the inputs and attributes and infers the output shape [N, M, (outH,) outW].</summary>
    internal static ConvPlan InferShape(OperatorContext context, Tensor x, Tensor w, Tensor? b)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16))
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
