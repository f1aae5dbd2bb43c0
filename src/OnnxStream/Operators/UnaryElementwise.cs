using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// Shared plumbing of the elementwise float operators (Exp, Erf, Relu, Clip, ...): a span kernel is
/// applied to contiguous chunks of the input, on <see cref="OperatorContext.Parallel"/> for large
/// tensors. float32 runs the kernel on the tensors themselves; float16 widens each chunk into a stack
/// buffer, runs the kernel in float32 in place, and rounds back (so float16 results are the float32
/// results rounded, as ONNX Runtime computes them).
/// </summary>
internal static unsafe class UnaryElementwise
{
    /// <summary>Elements per float16 stack buffer, and per work item of a parallel loop.</summary>
    private const int Block = 4096;

    /// <summary>Tensors smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <summary>
    /// Computes <paramref name="output"/> from <paramref name="input"/> (same length). Kernels must
    /// accept <paramref name="input"/> and <paramref name="output"/> being the same span.
    /// </summary>
    internal delegate void Kernel(ReadOnlySpan<float> input, Span<float> output);

    /// <summary>A kernel on an integer type (same contract as <see cref="Kernel"/>).</summary>
    internal delegate void Kernel<T>(ReadOnlySpan<T> input, Span<T> output);

    /// <summary>Checks that <paramref name="x"/> is float32 or float16; the output has its shape and type.</summary>
    public static int[] InferFloatShape(OperatorContext context, Tensor x, string name = "X")
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16))
            throw context.Error($"{name} must be float32 or float16, not {x.ElementType}");
        return (int[])x.Shape.Clone();
    }

    /// <summary>The usual single-input operator: output 0 = <paramref name="kernel"/>(input 0), float32 or float16.</summary>
    public static void RunFloat(OperatorContext context, Kernel kernel)
    {
        var x = context.Input(0);
        var shape = InferFloatShape(context, x);
        var output = context.Output(0, x.ElementType, shape);
        Apply(context, x, output, kernel);
    }

    /// <summary>
    /// output = kernel(x) for float32 or float16 tensors of the same type and element count.
    /// </summary>
    public static void Apply(OperatorContext context, Tensor x, Tensor output, Kernel kernel)
    {
        var count = (long)x.ElementCount;
        if (count == 0) return;
        var source = (nint)AxisHelper.Data(x);
        var destination = (nint)AxisHelper.Data(output);
        if (x.ElementType == ElementType.Float32)
            ForRanges(context, count, (start, end) =>
                kernel(new ReadOnlySpan<float>((float*)source + start, (int)(end - start)),
                    new Span<float>((float*)destination + start, (int)(end - start))));
        else
            ForRanges(context, count, (start, end) =>
            {
                Span<float> buffer = stackalloc float[Block];
                for (var i = start; i < end; i += Block)
                {
                    var length = (int)Math.Min(Block, end - i);
                    var chunk = buffer[..length];
                    TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)source + i, length), chunk);
                    kernel(chunk, chunk);
                    TensorPrimitives.ConvertToHalf(chunk, new Span<Half>((Half*)destination + i, length));
                }
            });
    }

    /// <summary>output = kernel(x) for tensors of element type <typeparamref name="T"/>.</summary>
    public static void Apply<T>(OperatorContext context, Tensor x, Tensor output, Kernel<T> kernel) where T : unmanaged
    {
        var count = (long)x.ElementCount;
        if (count == 0) return;
        var source = (nint)AxisHelper.Data(x);
        var destination = (nint)AxisHelper.Data(output);
        ForRanges(context, count, (start, end) =>
            kernel(new ReadOnlySpan<T>((T*)source + start, (int)(end - start)),
                new Span<T>((T*)destination + start, (int)(end - start))));
    }

    /// <summary>
    /// Calls <paramref name="body"/> on ranges [start, end) that cover [0, <paramref name="count"/>):
    /// one range on the calling thread for small counts, else a few per thread.
    /// </summary>
    public static void ForRanges(OperatorContext context, long count, Action<long, long> body)
    {
        var threads = context.Parallel.MaxDegreeOfParallelism;
        if (count < ParallelThreshold || threads <= 1)
        {
            body(0, count);
            return;
        }
        var chunks = (int)Math.Min((count + Block - 1) / Block, threads * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk =>
        {
            // Chunk boundaries on multiples of Block keep vector loops aligned with each other.
            var start = count * chunk / chunks / Block * Block;
            var end = chunk == chunks - 1 ? count : count * (chunk + 1) / chunks / Block * Block;
            if (end > start) body(start, end);
        });
    }
}
