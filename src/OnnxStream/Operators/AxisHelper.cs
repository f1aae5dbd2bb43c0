using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// Shared pieces of the shape operators: axis normalization, reading index tensors, shape formatting,
/// and a type-generic strided copy (on element sizes 1, 2, 4 and 8) that Concat, Split, Slice,
/// Transpose and Reshape are all written in terms of.
/// </summary>
internal static unsafe class AxisHelper
{
    /// <summary>Copies smaller than this many bytes run on the calling thread.</summary>
    private const long ParallelThresholdBytes = 1 << 16;

    /// <summary>Side of the square tiles of a transposing copy, in elements.</summary>
    private const int Tile = 32;

    /// <summary><paramref name="axis"/> in [-rank, rank) mapped to [0, rank), or an error naming <paramref name="what"/>.</summary>
    public static int NormalizeAxis(OperatorContext context, long axis, int rank, string what = "axis")
    {
        if (axis < -rank || axis >= rank)
            throw context.Error($"{what} {axis} is out of range for rank {rank} (valid: {-rank}..{rank - 1})");
        return (int)(axis < 0 ? axis + rank : axis);
    }

    /// <summary>A shape as <c>[1,2,3]</c>.</summary>
    public static string Format(ReadOnlySpan<int> shape) => $"[{string.Join(',', shape.ToArray())}]";

    /// <summary>A shape as <c>[1,2,3]</c>.</summary>
    public static string Format(ReadOnlySpan<long> values) => $"[{string.Join(',', values.ToArray())}]";

    /// <summary>The values of a scalar or 1-D int64 or int32 tensor (small: starts, shapes, split sizes).</summary>
    public static long[] ReadIndices(OperatorContext context, Tensor tensor, string name)
    {
        if (tensor.Shape.Length > 1)
            throw context.Error($"{name} must be 1-D, not {tensor}");
        return tensor.ElementType switch
        {
            ElementType.Int64 => tensor.Span<long>().ToArray(),
            ElementType.Int32 => Array.ConvertAll(tensor.Span<int>().ToArray(), v => (long)v),
            _ => throw context.Error($"{name} must be int64 or int32, not {tensor.ElementType}"),
        };
    }

    /// <summary>Row-major element strides of <paramref name="shape"/>.</summary>
    public static long[] Strides(ReadOnlySpan<int> shape)
    {
        var strides = new long[shape.Length];
        long stride = 1;
        for (var i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = stride;
            stride *= shape[i];
        }
        return strides;
    }

    /// <summary>Product of <c>shape[start..end)</c>.</summary>
    public static long Product(ReadOnlySpan<int> shape, int start, int end)
    {
        long product = 1;
        for (var i = start; i < end; i++) product *= shape[i];
        return product;
    }

    /// <summary>The address of a tensor's first element.</summary>
    public static byte* Data(Tensor tensor) => tensor.ElementType switch
    {
        ElementType.Float32 => (byte*)tensor.Buffer<float>().Pointer,
        ElementType.Float16 => (byte*)tensor.Buffer<Half>().Pointer,
        ElementType.Int64 => (byte*)tensor.Buffer<long>().Pointer,
        ElementType.Int32 => (byte*)tensor.Buffer<int>().Pointer,
        _ => tensor.Buffer<byte>().Pointer,
    };

    /// <summary>Copies all of <paramref name="source"/>'s elements into <paramref name="destination"/> (same byte count).</summary>
    public static void CopyAll(OperatorContext context, Tensor source, Tensor destination)
    {
        var count = source.ElementCount;
        Copy(context, source, 0, [1], destination, 0, [1], [count]);
    }

    /// <summary>
    /// For every index <c>i</c> of <paramref name="shape"/>: destination[destinationOffset + Σ i·destinationStrides]
    /// = source[sourceOffset + Σ i·sourceStrides] (offsets and strides in elements; source strides may be
    /// negative). Both tensors must have the same element type. Contiguous runs become block copies, a
    /// transposition of the two innermost runs is tiled, and large copies are spread over
    /// <see cref="OperatorContext.Parallel"/>.
    /// </summary>
    public static void Copy(OperatorContext context, Tensor source, long sourceOffset, ReadOnlySpan<long> sourceStrides,
        Tensor destination, long destinationOffset, ReadOnlySpan<long> destinationStrides, ReadOnlySpan<int> shape)
    {
        if (source.ElementType != destination.ElementType)
            throw context.Error($"cannot copy {source.ElementType} elements into a {destination.ElementType} tensor");
        var elementSize = source.ElementType.Size();

        // Drop size-1 dimensions, merge neighbours that are contiguous on both sides.
        var dims = new List<Dim>(shape.Length);
        for (var k = 0; k < shape.Length; k++)
        {
            if (shape[k] == 0) return;
            if (shape[k] == 1) continue;
            var dim = new Dim(shape[k], sourceStrides[k], destinationStrides[k]);
            if (dims.Count > 0 && dims[^1].Source == dim.Source * dim.Count && dims[^1].Destination == dim.Destination * dim.Count)
                dims[^1] = dim with { Count = dims[^1].Count * dim.Count };
            else dims.Add(dim);
        }
        if (dims.Count == 0) dims.Add(new Dim(1, 1, 1));

        var plan = new Plan
        {
            Source = (nint)(Data(source) + sourceOffset * elementSize),
            Destination = (nint)(Data(destination) + destinationOffset * elementSize),
            ElementSize = elementSize,
            Inner = dims[^1],
        };
        dims.RemoveAt(dims.Count - 1);

        // The transposing case: the destination's innermost run is strided in the source, and some
        // outer dimension is the source's contiguous one. Tile those two.
        if (plan.Inner.Destination == 1 && plan.Inner.Source != 1 && plan.Inner.Count >= 4)
        {
            var contiguous = dims.FindIndex(d => d.Source == 1 && d.Count >= 4);
            if (contiguous >= 0)
            {
                plan.Tiled = dims[contiguous];
                plan.HasTile = true;
                dims.RemoveAt(contiguous);
            }
        }
        plan.Outer = dims.ToArray();

        long rows = 1;
        foreach (var dim in plan.Outer) rows *= dim.Count;
        var tileRows = plan.HasTile ? (plan.Tiled.Count + Tile - 1) / Tile : 1;
        var items = rows * tileRows;
        var bytes = rows * plan.Inner.Count * (plan.HasTile ? plan.Tiled.Count : 1) * elementSize;

        if (bytes < ParallelThresholdBytes || context.Parallel.MaxDegreeOfParallelism <= 1 || items == 1)
        {
            // One big contiguous block: split it so that threads share it.
            if (items == 1 && bytes >= ParallelThresholdBytes && context.Parallel.MaxDegreeOfParallelism > 1 &&
                !plan.HasTile && plan.Inner.Source == 1 && plan.Inner.Destination == 1)
            {
                CopyBlockParallel(context, plan.Source, plan.Destination, bytes);
                return;
            }
            RunItems(plan, 0, items, tileRows);
            return;
        }
        var chunks = (int)Math.Min(items, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk =>
            RunItems(plan, items * chunk / chunks, items * (chunk + 1) / chunks, tileRows));
    }

    private static void CopyBlockParallel(OperatorContext context, nint source, nint destination, long bytes)
    {
        var chunks = context.Parallel.MaxDegreeOfParallelism * 2;
        Parallel.For(0, chunks, context.Parallel, chunk =>
        {
            var start = bytes * chunk / chunks;
            var end = bytes * (chunk + 1) / chunks;
            Buffer.MemoryCopy((byte*)source + start, (byte*)destination + start, end - start, end - start);
        });
    }

    private static void RunItems(Plan plan, long start, long end, long tileRows)
    {
        switch (plan.ElementSize)
        {
            case 1: RunItems<byte>(plan, start, end, tileRows); break;
            case 2: RunItems<ushort>(plan, start, end, tileRows); break;
            case 4: RunItems<uint>(plan, start, end, tileRows); break;
            case 8: RunItems<ulong>(plan, start, end, tileRows); break;
            default: throw new NotSupportedException($"element size {plan.ElementSize}");
        }
    }

    private static void RunItems<T>(Plan plan, long start, long end, long tileRows) where T : unmanaged
    {
        var outer = plan.Outer;
        var inner = plan.Inner;
        for (var item = start; item < end; item++)
        {
            var row = item / tileRows;
            var tileRow = item % tileRows;
            // Offsets of this row: decompose its index over the outer dimensions (innermost last).
            long sourceOffset = 0, destinationOffset = 0, rest = row;
            for (var k = outer.Length - 1; k >= 0; k--)
            {
                var index = rest % outer[k].Count;
                rest /= outer[k].Count;
                sourceOffset += index * outer[k].Source;
                destinationOffset += index * outer[k].Destination;
            }
            var source = (T*)plan.Source + sourceOffset;
            var destination = (T*)plan.Destination + destinationOffset;
            if (plan.HasTile)
            {
                // Rows a of the tiled dimension (contiguous in the source) × the inner run (contiguous in the destination).
                var tiled = plan.Tiled;
                var aStart = tileRow * Tile;
                var aEnd = Math.Min(aStart + Tile, tiled.Count);
                for (long b0 = 0; b0 < inner.Count; b0 += Tile)
                {
                    var bEnd = Math.Min(b0 + Tile, inner.Count);
                    for (var a = aStart; a < aEnd; a++)
                    {
                        var s = source + a + b0 * inner.Source;
                        var d = destination + a * tiled.Destination + b0;
                        for (var b = b0; b < bEnd; b++, s += inner.Source, d++) *d = *s;
                    }
                }
            }
            else if (inner.Source == 1 && inner.Destination == 1)
            {
                var bytes = inner.Count * sizeof(T);
                Buffer.MemoryCopy(source, destination, bytes, bytes);
            }
            else
            {
                var s = source;
                var d = destination;
                for (long i = 0; i < inner.Count; i++, s += inner.Source, d += inner.Destination) *d = *s;
            }
        }
    }

    private readonly record struct Dim(long Count, long Source, long Destination);

    private sealed class Plan
    {
        public nint Source;
        public nint Destination;
        public int ElementSize;
        public Dim Inner;
        public Dim Tiled;
        public bool HasTile;
        public Dim[] Outer = [];
    }
}
