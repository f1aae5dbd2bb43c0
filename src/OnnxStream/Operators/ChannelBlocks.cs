namespace OnnxStream.Operators;

/// <summary>
/// How operations split channels into blocks: a convolution's input and output channels, the output columns of a
/// product with a weight when only a slice of the weight is converted and packed at a time.
/// </summary>
internal static class ChannelBlocks
{
    /// <summary>Block sizes are multiples of this many channels (XNNPACK's widest output tile; 64-byte aligned float32 offsets).</summary>
    public const int Alignment = 16;

    /// <summary>
    /// The block size that splits <paramref name="count"/> into the fewest blocks of at most <paramref name="limit"/> (but at
    /// least <see cref="Alignment"/>), as even as alignment allows: 1280 channels in blocks of at most 896 are two of 640.
    /// </summary>
    public static int Size(int count, long limit)
    {
        if (count <= limit) return count;
        var aligned = (int)Math.Max(Alignment, limit / Alignment * Alignment);
        var blocks = (count + aligned - 1) / aligned;
        var size = ((count + blocks - 1) / blocks + Alignment - 1) / Alignment * Alignment;
        return Math.Min(size, count);
    }

    /// <summary>
    /// The bytes of a weight one thread may convert and pack at once when weights are not kept: the session's
    /// <see cref="OperatorContext.WeightSliceBytes"/>, shared by the threads that pack blocks at the same time.
    /// </summary>
    public static long SliceBytesPerThread(OperatorContext context) => Math.Max(1, context.WeightSliceBytes / context.Pool.ThreadCount);
}
