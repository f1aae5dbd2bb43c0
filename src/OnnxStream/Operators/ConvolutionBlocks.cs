using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// A float convolution over NHWC images computed as blocks of input channels × output channels, each block one XNNPACK
/// convolution reading its input channels in place (input pixel stride) and writing its output channels in place
/// (output pixel stride).
/// <list type="bullet">
/// <item>Input-channel blocks are for speed: XNNPACK's convolution streams the whole packed kernel for every few output
/// pixels, so a kernel of more than a few MB (SD 1.5's 1280- and 2560-channel 3×3 convolutions: 59 and 118 MB) runs
/// from main memory at a fraction of the arithmetic's speed. Blocks of at most <see cref="InputBlockElements"/> kernel
/// elements per output channel stay in the caches; their results are summed (the first block adds the bias).
/// float16 arithmetic is not split this way (each partial sum would be rounded to float16).</item>
/// <item>Output-channel blocks bound memory when the weights are not kept: only one block of the kernel is converted
/// and packed at a time (<see cref="OperatorContext.WeightSliceBytes"/>).</item>
/// </list>
/// Grouped convolutions run as one block. Kept (Ram provider), every block is packed once; otherwise each block is
/// packed just before it runs and freed right after.
/// </summary>
internal sealed unsafe class ConvolutionBlocks : IDisposable
{
    /// <summary>
    /// The most kernel elements per output channel in one input-channel block (9 × 256: a 3×3 kernel over 256 input
    /// channels). Measured on the SD 1.5 UNet's convolutions (AVX-512, 2 threads): 1152–2304 run 3–5× faster than whole
    /// 11,520- and 23,040-element rows, 4608 is already slower.
    /// </summary>
    internal const int InputBlockElements = 2304;

    private readonly Convolution2dOperator?[]? _kept;

    private ConvolutionBlocks(Convolution2dGeometry geometry, KernelDataType dataType, int inputBlock, int outputBlock)
    {
        Geometry = geometry;
        DataType = dataType;
        InputBlock = inputBlock;
        OutputBlock = outputBlock;
        InputBlocks = (geometry.InputChannels + inputBlock - 1) / inputBlock;
        OutputBlocks = (geometry.OutputChannels + outputBlock - 1) / outputBlock;
    }

    private ConvolutionBlocks(Convolution2dGeometry geometry, KernelDataType dataType, int inputBlock, int outputBlock, bool keep)
        : this(geometry, dataType, inputBlock, outputBlock) =>
        _kept = keep ? new Convolution2dOperator?[InputBlocks * OutputBlocks] : null;

    /// <summary>The whole convolution's shape.</summary>
    public Convolution2dGeometry Geometry { get; }

    /// <summary>float32 or float16.</summary>
    public KernelDataType DataType { get; }

    /// <summary>Input channels per block (the last block may have fewer).</summary>
    public int InputBlock { get; }

    /// <summary>Output channels per block (the last block may have fewer).</summary>
    public int OutputBlock { get; }

    /// <summary>Number of input-channel blocks.</summary>
    public int InputBlocks { get; }

    /// <summary>Number of output-channel blocks.</summary>
    public int OutputBlocks { get; }

    /// <summary>
    /// Plans the blocks of a convolution computed in <typeparamref name="T"/> (float or Half): input-channel blocks of at
    /// most <see cref="InputBlockElements"/> kernel elements per output channel (float only), and output-channel blocks whose
    /// kernel block holds at most <paramref name="maxBlockBytes"/> bytes (at least <see cref="ChannelBlocks.Alignment"/>
    /// channels), balanced (see <see cref="ChannelBlocks.Size"/>).
    /// </summary>
    public static ConvolutionBlocks Plan<T>(Convolution2dGeometry geometry, long maxBlockBytes, bool keep) where T : unmanaged
    {
        var dataType = KernelDataTypes.Of<T>();
        var windowPixels = geometry.KernelHeight * geometry.KernelWidth;
        var inputChannels = geometry.InputChannels;
        var outputChannels = geometry.OutputChannels;
        if (geometry.Groups != 1) return new ConvolutionBlocks(geometry, dataType, inputChannels, outputChannels, keep);
        var inputBlock = dataType == KernelDataType.Float32
            ? ChannelBlocks.Size(inputChannels, Math.Max(1, InputBlockElements / windowPixels))
            : inputChannels;
        var rowBytes = (long)inputBlock * windowPixels * sizeof(T);
        var outputBlock = ChannelBlocks.Size(outputChannels, maxBlockBytes / rowBytes);
        return new ConvolutionBlocks(geometry, dataType, inputBlock, outputBlock, keep);
    }

    /// <summary>Packs every block now, to be kept for later runs (see <see cref="Plan{T}"/>'s keep).</summary>
    public void PackAll<T>(OperatorContext context, Tensor w, Tensor? b) where T : unmanaged
    {
        var kept = _kept ?? throw new InvalidOperationException("These blocks are not kept.");
        var bias = Bias<T>(context, b, out var ownsBias);
        try
        {
            for (var i = 0; i < InputBlocks; i++)
                for (var o = 0; o < OutputBlocks; o++)
                    kept[i * OutputBlocks + o] = CreateBlock<T>(context, w, i == 0 ? bias : null, i, o);
        }
        finally
        {
            if (ownsBias) bias!.Dispose();
        }
    }

    /// <summary>
    /// Convolves the NHWC <paramref name="input"/> [n, height, width, InputChannels] into the NHWC <paramref name="output"/>.
    /// Unless every block is kept, each is packed from <paramref name="w"/> (OIHW, as stored: float32, float16 or quantized
    /// uint8) and <paramref name="b"/> just before it runs.
    /// </summary>
    public void Run<T>(OperatorContext context, int n, int height, int width, NativeBuffer<T> input, NativeBuffer<T> output,
        Tensor w, Tensor? b) where T : unmanaged
    {
        var type = ElementTypes.Of<T>();
        var total = InputBlocks * OutputBlocks;
        // Blocks not kept are packed a group at a time, one per thread (XNNPACK packs on the calling thread).
        var group = _kept is null ? Math.Min(total, context.Pool.ThreadCount) : total;
        var packed = _kept ?? new Convolution2dOperator?[group];
        Tensor? partial = null, bias = null;
        var ownsBias = false;
        try
        {
            if (_kept is null) bias = Bias<T>(context, b, out ownsBias);
            if (InputBlocks > 1) partial = context.Scratch(type, [output.Length]);
            for (var start = 0; start < total; start += group)
            {
                var count = Math.Min(group, total - start);
                if (_kept is null) PackGroup<T>(context, w, bias, packed, start, count);
                for (var index = start; index < start + count; index++)
                {
                    // Input blocks in order: the first writes the output (with the bias), each other one a partial sum
                    // that is added once all its output blocks have run.
                    var (i, o) = (index / OutputBlocks, index % OutputBlocks);
                    if (i > 1 && o == 0) AddPartial(context, output, partial!);
                    var slot = _kept is null ? index - start : index;
                    try
                    {
                        packed[slot]!.Run(context.Pool, n, height, width, View(input, i * InputBlock),
                            View(i == 0 ? output : partial!.Buffer<T>(), o * OutputBlock));
                    }
                    finally
                    {
                        if (_kept is null) Free(packed, slot);
                    }
                }
            }
            if (InputBlocks > 1) AddPartial(context, output, partial!);
        }
        finally
        {
            if (_kept is null)
                for (var slot = 0; slot < packed.Length; slot++) Free(packed, slot);
            partial?.Dispose();
            if (ownsBias) bias!.Dispose();
        }
    }

    /// <summary>Packs blocks <paramref name="start"/>.. (<paramref name="count"/> of them) into <paramref name="packed"/>, in parallel.</summary>
    private void PackGroup<T>(OperatorContext context, Tensor w, Tensor? bias, Convolution2dOperator?[] packed, int start, int count)
        where T : unmanaged
    {
        void Pack(int slot)
        {
            var (i, o) = ((start + slot) / OutputBlocks, (start + slot) % OutputBlocks);
            packed[slot] = CreateBlock<T>(context, w, i == 0 ? bias : null, i, o);
        }
        if (count == 1) Pack(0);
        else Parallel.For(0, count, context.Parallel, Pack);
    }

    private static void AddPartial<T>(OperatorContext context, NativeBuffer<T> output, Tensor partial) where T : unmanaged =>
        BinaryKernels.Run(context.Pool, BinaryOperation.Add, output, [output.Length], partial.Buffer<T>(), [output.Length], output);

    private static void Free(Convolution2dOperator?[] packed, int slot)
    {
        packed[slot]?.Dispose();
        packed[slot] = null;
    }

    /// <summary>The elements of <paramref name="buffer"/> from <paramref name="offset"/> on, in place.</summary>
    private static NativeBuffer<T> View<T>(NativeBuffer<T> buffer, int offset) where T : unmanaged =>
        offset == 0 ? buffer : NativeBuffer<T>.Wrap(buffer.Pointer + offset, buffer.Length - offset);

    /// <summary>B as <typeparamref name="T"/> (null without one); <paramref name="owned"/>: a converted copy.</summary>
    private static Tensor? Bias<T>(OperatorContext context, Tensor? b, out bool owned) where T : unmanaged
    {
        owned = false;
        return b is null ? null : Layout.ToType<T>(context, b, "B", out owned);
    }

    /// <summary>Packs block (<paramref name="inputIndex"/>, <paramref name="outputIndex"/>): its OHWI kernel from W's OIHW block, converted to <typeparamref name="T"/>.</summary>
    private Convolution2dOperator CreateBlock<T>(OperatorContext context, Tensor w, Tensor? bias, int inputIndex, int outputIndex)
        where T : unmanaged
    {
        var g = Geometry;
        var c0 = inputIndex * InputBlock;
        var o0 = outputIndex * OutputBlock;
        var inputs = Math.Min(InputBlock, g.InputChannels - c0);
        var outputs = Math.Min(OutputBlock, g.OutputChannels - o0);
        var geometry = g with
        {
            GroupInputChannels = g.Groups == 1 ? inputs : g.GroupInputChannels,
            GroupOutputChannels = g.Groups == 1 ? outputs : g.GroupOutputChannels,
            InputPixelStride = inputs == g.InputChannels ? 0 : g.InputChannels,
            OutputPixelStride = outputs == g.OutputChannels ? 0 : g.OutputChannels,
        };
        using var kernel = BlockKernel<T>(context, w, c0, inputs, o0, outputs);
        var blockBias = bias is null ? default : bias.Span<T>().Slice(o0, outputs);
        return typeof(T) == typeof(Half)
            ? Convolution2dOperator.CreateFloat16(geometry, kernel.Span<Half>(), System.Runtime.InteropServices.MemoryMarshal.Cast<T, Half>(blockBias))
            : Convolution2dOperator.CreateFloat32(geometry, kernel.Span<float>(), System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(blockBias));
    }

    /// <summary>
    /// The OHWI kernel [outputs, kH, kW, inputs] of output channels o0.. and input channels c0.. of the OIHW
    /// <paramref name="w"/> (per group: [M, C/group, kH, kW]), as <typeparamref name="T"/>: gathered and transposed in
    /// the stored type, then converted, so only one block is ever widened. The caller disposes it (it may be a view of W).
    /// </summary>
    private Tensor BlockKernel<T>(OperatorContext context, Tensor w, int c0, int inputs, int o0, int outputs) where T : unmanaged
    {
        var windowPixels = Geometry.KernelHeight * Geometry.KernelWidth;
        var rowLength = Geometry.GroupInputChannels * windowPixels; // one output channel's kernel in W
        var elementSize = w.ElementType.Size();
        var groupInputs = Geometry.Groups == 1 ? inputs : Geometry.GroupInputChannels;
        var source = AxisHelper.Data(w) + ((long)o0 * rowLength + (long)c0 * windowPixels) * elementSize;
        var blockLength = groupInputs * windowPixels;
        // 1. The OHWI block in the stored type, gathered and transposed in one pass (a view of W when nothing moves).
        Tensor ohwi;
        if (blockLength == rowLength && (windowPixels == 1 || groupInputs == 1))
            ohwi = Tensor.Wrap(w.ElementType, [outputs, windowPixels, groupInputs], source, w.Quantization);
        else
        {
            ohwi = context.Scratch(w.ElementType, [outputs, windowPixels, groupInputs], w.Quantization);
            TransposeKernel.Run(context.Pool, elementSize, outputs, groupInputs, windowPixels, source, rowLength, AxisHelper.Data(ohwi));
        }
        // 2. As T (the block itself when it already is; disposing a view frees nothing).
        try
        {
            var converted = Layout.ToType<T>(context, ohwi, "W", out _);
            if (converted != ohwi) ohwi.Dispose();
            return converted;
        }
        catch
        {
            ohwi.Dispose();
            throw;
        }
    }

    /// <summary>Frees the kept blocks.</summary>
    public void Dispose()
    {
        if (_kept is null) return;
        for (var i = 0; i < _kept.Length; i++)
        {
            _kept[i]?.Dispose();
            _kept[i] = null;
        }
    }
}
