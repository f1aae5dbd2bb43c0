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
        for (var row = 0; row < rows; row++)
        {
            var from = ((long)row * n + first) * size;
            var to = destination + row * destinationStride * size;
            if (reader is null) Buffer.MemoryCopy(source + from, to, bytes, bytes);
            else reader.Read(from, new Span<byte>(to, checked((int)bytes)));
        }
    }
}
