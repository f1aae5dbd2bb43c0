using OnnxStream.Kernels;
using OnnxStream.Tensors;
using OnnxStream.Weights;

namespace OnnxStream.Operators;

/// <summary>Gathers a range of columns of a 2-D weight [rows, N] as stored, from memory or, when left unread, from its file.</summary>
internal static unsafe class WeightColumns
{
    /// <summary>
    /// Copies columns <paramref name="first"/>..+<paramref name="count"/> of every row of <paramref name="w"/> [rows, N] (as stored)
    /// to <paramref name="destination"/>, row r at element r·<paramref name="destinationStride"/>. With <paramref name="reader"/>
    /// they are read from the file a row at a time (<paramref name="w"/> then only gives the type and shape), so the weight is
    /// never held whole.
    /// </summary>
    public static void Gather(Tensor w, WeightSliceReader? reader, int first, int count, byte* destination, long destinationStride)
    {
        var (rows, n) = (w.Shape[0], w.Shape[1]);
        var size = w.ElementType.Size();
        var bytes = (long)count * size;
        var source = reader is null ? AxisHelper.Data(w) : null;
        if (count == n && destinationStride == n)
        {
            // Whole rows into dense rows: one read (or copy) of the lot.
            var all = (long)rows * bytes;
            if (reader is null) Buffer.MemoryCopy(source, destination, all, all);
            else reader.Read(0, new Span<byte>(destination, checked((int)all)));
            return;
        }
        for (var row = 0; row < rows; row++)
        {
            var from = ((long)row * n + first) * size;
            var to = destination + row * destinationStride * size;
            if (reader is null) Buffer.MemoryCopy(source + from, to, bytes, bytes);
            else reader.Read(from, new Span<byte>(to, checked((int)bytes)));
        }
    }

    /// <summary>
    /// The column ranges (<paramref name="ranges"/>, in order) of the 2-D weight <paramref name="w"/> [rows, N] as the rows of
    /// a scratch tensor [columns, rows] in the stored type: gathered (see <see cref="Gather"/>), then transposed (a weight
    /// held whole in memory is transposed where it is). The caller disposes it.
    /// </summary>
    public static Tensor GatherTransposed(OperatorContext context, Tensor w, WeightSliceReader? reader, ReadOnlySpan<(int First, int Count)> ranges)
    {
        var rows = w.Shape[0];
        var columns = 0;
        foreach (var range in ranges) columns += range.Count;
        var size = w.ElementType.Size();
        var transposed = context.Scratch(w.ElementType, [columns, rows], w.Quantization);
        if (reader is null && columns == w.Shape[1] && ranges is [(0, _)])
        {
            // All of a weight in memory: transposed where it is.
            TransposeKernel.Run(context.Pool, size, 1, rows, columns, AxisHelper.Data(w), 0, AxisHelper.Data(transposed));
            return transposed;
        }
        using var gathered = context.Scratch(w.ElementType, [rows, columns], w.Quantization);
        var offset = 0;
        foreach (var (first, count) in ranges)
        {
            Gather(w, reader, first, count, AxisHelper.Data(gathered) + (long)offset * size, columns);
            offset += count;
        }
        TransposeKernel.Run(context.Pool, size, 1, rows, columns, AxisHelper.Data(gathered), 0, AxisHelper.Data(transposed));
        return transposed;
    }
}
