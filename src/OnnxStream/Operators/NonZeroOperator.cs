using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX NonZero: the indices of the elements that are not zero, as int64 [rank, count] (row d holds the
/// d-th coordinate of each such element, elements in row-major order). NaN is non-zero, -0.0 is zero. A
/// scalar is treated as a 1-D tensor of one element (output [1, 0 or 1]), as ONNX Runtime does.
/// float32, float16, int64, int32, bool and uint8 (the stored byte, not a dequantized value).
/// Two passes: count per chunk, then each chunk writes its own columns.
/// </summary>
internal sealed unsafe class NonZeroOperator : IOperator
{
    /// <summary>Elements per counting chunk; inputs of one chunk run on the calling thread.</summary>
    private const int Chunk = 1 << 15;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        CheckType(context, x);
        switch (x.ElementType)
        {
            case ElementType.Float32: Find<float>(context, x); break;
            case ElementType.Float16: Find<Half>(context, x); break;
            case ElementType.Int64: Find<long>(context, x); break;
            case ElementType.Int32: Find<int>(context, x); break;
            default: Find<byte>(context, x); break;
        }
    }

    /// <summary>Checks the input's type (the output's column count depends on the values).</summary>
    internal static void CheckType(OperatorContext context, Tensor x)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16 or ElementType.Int64 or ElementType.Int32
            or ElementType.Bool or ElementType.UInt8))
            throw context.Error($"X must be float32, float16, int64, int32, bool or uint8, not {x.ElementType}");
    }

    /// <summary>The output shape for <paramref name="count"/> non-zero elements of <paramref name="x"/>.</summary>
    internal static int[] InferShape(Tensor x, int count) => [Math.Max(1, x.Shape.Length), count];

    private static void Find<T>(OperatorContext context, Tensor x) where T : unmanaged, INumber<T>
    {
        var total = (long)x.ElementCount;
        var source = (nint)AxisHelper.Data(x);
        var chunks = (int)((total + Chunk - 1) / Chunk);
        var parallel = chunks > 1 && context.Parallel.MaxDegreeOfParallelism > 1;
        var counts = new long[chunks];

        void Count(int chunk)
        {
            var start = (long)chunk * Chunk;
            var values = new ReadOnlySpan<T>((T*)source + start, (int)Math.Min(Chunk, total - start));
            // INumber's != treats -0.0 as zero and NaN as non-zero.
            long n = 0;
            foreach (var v in values)
                if (v != T.Zero) n++;
            counts[chunk] = n;
        }
        if (parallel) Parallel.For(0, chunks, context.Parallel, Count);
        else for (var c = 0; c < chunks; c++) Count(c);

        long found = 0;
        var firsts = new long[chunks];
        for (var c = 0; c < chunks; c++)
        {
            firsts[c] = found;
            found += counts[c];
        }
        var shape = x.Shape.Length == 0 ? [1] : x.Shape;
        var output = context.Output(0, ElementType.Int64, InferShape(x, checked((int)found)));
        if (found == 0) return;
        var destination = (nint)AxisHelper.Data(output);
        var rank = shape.Length;

        void Write(int chunk)
        {
            if (counts[chunk] == 0) return;
            var start = (long)chunk * Chunk;
            var end = Math.Min(start + Chunk, total);
            // The coordinates of element `start`, then advanced like an odometer.
            Span<int> index = stackalloc int[rank];
            var rest = start;
            for (var d = rank - 1; d >= 0; d--)
            {
                index[d] = (int)(rest % shape[d]);
                rest /= shape[d];
            }
            var column = firsts[chunk];
            var values = (T*)source;
            var result = (long*)destination;
            for (var e = start; e < end; e++)
            {
                if (values[e] != T.Zero)
                {
                    for (var d = 0; d < rank; d++) result[d * found + column] = index[d];
                    column++;
                }
                for (var d = rank - 1; d >= 0 && ++index[d] == shape[d]; d--) index[d] = 0;
            }
        }
        if (parallel) Parallel.For(0, chunks, context.Parallel, Write);
        else for (var c = 0; c < chunks; c++) Write(c);
    }
}
