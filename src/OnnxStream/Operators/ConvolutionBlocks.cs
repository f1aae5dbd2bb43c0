using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Tensors;
using OnnxStream.Weights;

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
/// packed just before it runs and freed right after. A float16 W computed in float32 does not come here but to the
/// direct convolution (see <see cref="DirectConvolution"/>), which needs no packing.
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

    /// <summary>
    /// Whether <see cref="Run{T}"/> takes its input channel-blocked instead of NHWC: per image, each input block's channels
    /// as a dense NHWC image of their own, where the NCHW image had those channels ([N][blocks][H·W][block channels]; see
    /// <see cref="ToChannelBlocks"/>). Only for blocks packed per run (set before <see cref="Run{T}"/>).
    /// </summary>
    public bool ChannelBlockedInput
    {
        get;
        set => field = value && _kept is not null ? throw new InvalidOperationException("Kept blocks were packed for NHWC input.") : value;
    }

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
    /// channels), balanced (see <see cref="ChannelBlocks.Size"/>). With <paramref name="storedElementSize"/>, the kernel's
    /// stored rows are read from the file an output block at a time: their bytes count in the bound too.
    /// </summary>
    public static ConvolutionBlocks Plan<T>(Convolution2dGeometry geometry, long maxBlockBytes, bool keep, int storedElementSize = 0)
        where T : unmanaged
    {
        var dataType = KernelDataTypes.Of<T>();
        var windowPixels = geometry.KernelHeight * geometry.KernelWidth;
        var inputChannels = geometry.InputChannels;
        var outputChannels = geometry.OutputChannels;
        if (geometry.Groups != 1) return new ConvolutionBlocks(geometry, dataType, inputChannels, outputChannels, keep);
        var inputBlock = dataType == KernelDataType.Float32
            ? ChannelBlocks.Size(inputChannels, Math.Max(1, InputBlockElements / windowPixels))
            : inputChannels;
        // Per output channel: its kernel block in T, or its whole stored kernel row when the rows are read from the file.
        var rowBytes = Math.Max((long)inputBlock * windowPixels * sizeof(T), (long)inputChannels * windowPixels * storedElementSize);
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
            for (var o = 0; o < OutputBlocks; o++)
            {
                var rows = AxisHelper.Data(w) + (long)o * OutputBlock * RowLength * w.ElementType.Size();
                for (var i = 0; i < InputBlocks; i++)
                    kept[o * InputBlocks + i] = CreateBlock<T>(context, w, rows, i == 0 ? bias : null, i, o);
            }
        }
        finally
        {
            if (ownsBias) bias!.Dispose();
        }
    }

    /// <summary>Elements of one output channel's kernel in W (OIHW: [C/group, kH, kW]).</summary>
    private int RowLength => Geometry.GroupInputChannels * Geometry.KernelHeight * Geometry.KernelWidth;

    /// <summary>
    /// Convolves the NHWC <paramref name="input"/> [n, height, width, InputChannels] into the NHWC <paramref name="output"/>,
    /// an output block at a time. Unless every block is kept, each is packed just before it runs from W (OIHW, as stored:
    /// float32, float16 or quantized uint8) and <paramref name="b"/>: from <paramref name="w"/>'s data, or, with
    /// <paramref name="reader"/>, from the output block's kernel rows read from the file (then <paramref name="w"/> only
    /// says the type).
    /// </summary>
    public void Run<T>(OperatorContext context, int n, int height, int width, NativeBuffer<T> input, NativeBuffer<T> output,
        Tensor w, WeightSliceReader? reader, Tensor? b) where T : unmanaged
    {
        var type = ElementTypes.Of<T>();
        // Blocks not kept are packed a group at a time, one per thread (XNNPACK packs on the calling thread).
        var group = _kept is null ? Math.Min(InputBlocks, context.Pool.ThreadCount) : InputBlocks;
        var packed = _kept ?? new Convolution2dOperator?[group];
        var rowBytes = (long)RowLength * w.ElementType.Size();
        Tensor? partial = null, bias = null, rows = null;
        var ownsBias = false;
        try
        {
            if (_kept is null) bias = Bias<T>(context, b, out ownsBias);
            if (InputBlocks > 1) partial = context.Scratch(type, [output.Length]);
            for (var o = 0; o < OutputBlocks; o++)
            {
                var (o0, outputs) = (o * OutputBlock, Math.Min(OutputBlock, Geometry.OutputChannels - o * OutputBlock));
                byte* source = null;
                if (_kept is null && reader is not null)
                {
                    rows = context.Scratch(w.ElementType, [outputs, RowLength], w.Quantization);
                    reader.Read(o0 * rowBytes, rows.Bytes);
                    source = AxisHelper.Data(rows);
                }
                else if (_kept is null)
                    source = AxisHelper.Data(w) + o0 * rowBytes;
                for (var start = 0; start < InputBlocks; start += group)
                {
                    var count = Math.Min(group, InputBlocks - start);
                    if (_kept is null) PackGroup<T>(context, w, source, bias, packed, start, count, o);
                    for (var i = start; i < start + count; i++)
                    {
                        // The first input block writes the output (with the bias), each other one a partial sum added to it.
                        var slot = _kept is null ? i - start : o * InputBlocks + i;
                        try
                        {
                            var target = i == 0 ? output : partial!.Buffer<T>();
                            if (!ChannelBlockedInput)
                                packed[slot]!.Run(context.Pool, n, height, width, View(input, i * InputBlock), View(target, o0));
                            else
                            {
                                // Images one at a time: a block's channels are dense within an image, not across them.
                                var (inputImage, outputImage) = ((long)Geometry.InputChannels * height * width, target.Length / n);
                                for (var image = 0; image < n; image++)
                                    packed[slot]!.Run(context.Pool, 1, height, width,
                                        View(input, checked((int)(image * inputImage + (long)i * InputBlock * height * width))),
                                        View(target, checked((int)(image * outputImage + o0))));
                            }
                        }
                        finally
                        {
                            if (_kept is null) Free(packed, slot);
                        }
                        if (i > 0) AddColumns(context, output, partial!.Buffer<T>(), o0, outputs);
                    }
                }
                rows?.Dispose();
                rows = null;
            }
        }
        finally
        {
            if (_kept is null)
                for (var slot = 0; slot < packed.Length; slot++) Free(packed, slot);
            rows?.Dispose();
            partial?.Dispose();
            if (ownsBias) bias!.Dispose();
        }
    }

    /// <summary>
    /// Turns the NCHW <paramref name="x"/> [n, InputChannels, pixels] into the channel-blocked layout in place (see
    /// <see cref="ChannelBlockedInput"/>): each block of channels of each image, contiguous in NCHW, transposed where it is,
    /// through a scratch copy of one block.
    /// </summary>
    public void ToChannelBlocks<T>(OperatorContext context, Tensor x, int n, int pixels) where T : unmanaged
    {
        var channels = Geometry.InputChannels;
        using var scratch = context.Scratch(ElementTypes.Of<T>(), [Math.Min(InputBlock, channels) * pixels]);
        var data = (T*)AxisHelper.Data(x);
        for (var image = 0; image < n; image++)
            for (var c0 = 0; c0 < channels; c0 += InputBlock)
            {
                var count = Math.Min(InputBlock, channels - c0);
                var block = new Span<T>(data + ((long)image * channels + c0) * pixels, count * pixels);
                block.CopyTo(scratch.Span<T>());
                Layout.NchwToNhwc<T>(scratch.Span<T>()[..block.Length], block, 1, count, pixels, context.Pool);
            }
    }

    /// <summary>Packs input blocks <paramref name="start"/>.. (<paramref name="count"/> of them) of output block <paramref name="o"/> into <paramref name="packed"/>, in parallel.</summary>
    private void PackGroup<T>(OperatorContext context, Tensor w, byte* rows, Tensor? bias, Convolution2dOperator?[] packed, int start, int count, int o)
        where T : unmanaged
    {
        var source = (nint)rows;
        void Pack(int slot) => packed[slot] = CreateBlock<T>(context, w, (byte*)source, start + slot == 0 ? bias : null, start + slot, o);
        if (count == 1) Pack(0);
        else Parallel.For(0, count, context.Parallel, Pack);
    }

    /// <summary>output[p, o0..o0+count) += partial[p, o0..o0+count) for every pixel p (float32: only float sums are split).</summary>
    private void AddColumns<T>(OperatorContext context, NativeBuffer<T> output, NativeBuffer<T> partial, int o0, int count) where T : unmanaged
    {
        var stride = Geometry.OutputChannels;
        if (count == stride)
        {
            BinaryKernels.Run(context.Pool, BinaryOperation.Add, output, [output.Length], partial, [output.Length], output);
            return;
        }
        var (sum, part) = ((nint)output.Pointer, (nint)partial.Pointer);
        var pixels = output.Length / stride;
        Parallel.For(0, context.Parallel.MaxDegreeOfParallelism, context.Parallel, worker =>
        {
            for (long p = (long)pixels * worker / context.Parallel.MaxDegreeOfParallelism,
                 end = (long)pixels * (worker + 1) / context.Parallel.MaxDegreeOfParallelism; p < end; p++)
            {
                var row = new Span<float>((float*)sum + p * stride + o0, count);
                System.Numerics.Tensors.TensorPrimitives.Add(row, new ReadOnlySpan<float>((float*)part + p * stride + o0, count), row);
            }
        });
    }

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

    /// <summary>
    /// Packs block (<paramref name="inputIndex"/>, <paramref name="outputIndex"/>): its OHWI kernel from the OIHW kernel rows
    /// of its output channels at <paramref name="rows"/>, converted to <typeparamref name="T"/>.
    /// </summary>
    private Convolution2dOperator CreateBlock<T>(OperatorContext context, Tensor w, byte* rows, Tensor? bias, int inputIndex, int outputIndex)
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
            InputPixelStride = inputs == g.InputChannels || ChannelBlockedInput ? 0 : g.InputChannels,
            OutputPixelStride = outputs == g.OutputChannels ? 0 : g.OutputChannels,
        };
        using var kernel = BlockKernel<T>(context, w, rows, c0, inputs, outputs);
        var blockBias = bias is null ? default : bias.Span<T>().Slice(o0, outputs);
        return typeof(T) == typeof(Half)
            ? Convolution2dOperator.CreateFloat16(geometry, kernel.Span<Half>(), System.Runtime.InteropServices.MemoryMarshal.Cast<T, Half>(blockBias))
            : Convolution2dOperator.CreateFloat32(geometry, kernel.Span<float>(), System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(blockBias));
    }

    /// <summary>
    /// The OHWI kernel [outputs, kH, kW, inputs] of input channels c0.. of the OIHW kernel rows at <paramref name="rows"/>
    /// (per group: [C/group, kH, kW] per output channel; of <paramref name="w"/>'s type), as <typeparamref name="T"/>: gathered and transposed in
    /// the stored type, then converted, so only one block is ever widened. The caller disposes it (it may be a view of W).
    /// </summary>
    private Tensor BlockKernel<T>(OperatorContext context, Tensor w, byte* rows, int c0, int inputs, int outputs) where T : unmanaged
    {
        var windowPixels = Geometry.KernelHeight * Geometry.KernelWidth;
        var rowLength = RowLength;
        var elementSize = w.ElementType.Size();
        var groupInputs = Geometry.Groups == 1 ? inputs : Geometry.GroupInputChannels;
        var source = rows + (long)c0 * windowPixels * elementSize;
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
