using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX DepthToSpace: moves blocks of channels into blocksize × blocksize spatial tiles, [N, C, H, W] →
/// [N, C/b², H·b, W·b]. mode "DCR" (default): the channel is read as (b_h, b_w, c'); "CRD": as
/// (c', b_h, b_w). A pure permutation, so any element type (quantized uint8 keeps its quantization);
/// it is one strided copy of the input seen as 6-D.
/// </summary>
internal sealed class DepthToSpaceOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var shape = InferShape(context, x, out var block, out var crd);
        var output = context.Output(0, x.ElementType, shape, x.Quantization);
        if (output.ElementCount == 0) return;
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        var channels = c / (block * block);
        long plane = (long)h * w;
        // Walk the output as [N, C', H, b_h, W, b_w] (contiguous); these are the input strides of each.
        long blockH, blockW, channel;
        if (crd)
        {
            channel = (long)block * block * plane;
            blockH = block * plane;
            blockW = plane;
        }
        else
        {
            blockH = (long)block * channels * plane;
            blockW = channels * plane;
            channel = plane;
        }
        long[] sourceStrides = [c * plane, channel, w, blockH, 1, blockW];
        int[] walk = [n, channels, h, block, w, block];
        AxisHelper.Copy(context, x, 0, sourceStrides, output, 0, AxisHelper.Strides(walk), walk);
    }

    /// <summary>Checks the input and attributes; returns the output shape.</summary>
    internal static int[] InferShape(OperatorContext context, Tensor x, out int block, out bool crd)
    {
        if (x.Shape.Length != 4) throw context.Error($"input must be 4-D [N, C, H, W], not {x}");
        if (!context.Attributes.Has("blocksize")) throw context.Error("the blocksize attribute is required");
        var size = context.Attributes.GetInt("blocksize", 0);
        if (size < 1 || size > 1 << 15) throw context.Error($"blocksize must be in 1..32768, not {size}");
        block = (int)size;
        var mode = context.Attributes.GetString("mode", "DCR");
        crd = mode switch
        {
            "DCR" => false,
            "CRD" => true,
            _ => throw context.Error($"mode must be \"DCR\" or \"CRD\", not \"{mode}\""),
        };
        int c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        var square = block * block;
        if (c % square != 0)
            throw context.Error($"the channel count {c} of input {AxisHelper.Format(x.Shape)} is not divisible by blocksize² = {square}");
        if ((long)h * block > int.MaxValue || (long)w * block > int.MaxValue)
            throw context.Error($"the output of input {AxisHelper.Format(x.Shape)} with blocksize {block} would be too large");
        return [x.Shape[0], c / square, h * block, w * block];
    }
}
