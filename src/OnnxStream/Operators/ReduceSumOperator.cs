using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX ReduceSum: sums over the axes given by input 1 (int64, opset 13+) or, for models of older opsets,
/// by the <c>axes</c> attribute (not both). Negative axes count from the end; a repeated axis counts
/// once. keepdims (default 1) keeps the reduced dimensions as 1s. Empty or absent axes reduce every
/// dimension, unless noop_with_empty_axes is 1, which makes the node an identity. A sum over an empty
/// set is 0. float32 and float16 (float32 SIMD sums of blocks, totalled in double, then rounded), int64
/// and int32 (wrapping). Also the engine of <see cref="ReduceMeanOperator"/> and
/// <see cref="ReduceMaxOperator"/>: contiguous runs reduced with SIMD when the innermost dimension is
/// reduced, runs of outputs accumulated elementwise when it is kept.
/// </summary>
internal sealed unsafe class ReduceSumOperator : IOperator
{
    /// <summary>What a reduction computes.</summary>
    internal enum Kind
    {
        Sum,
        Mean,
        Max,
    }

    /// <summary>Reductions over fewer than this many input elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <summary>Contiguous elements reduced by one SIMD call (and widened from float16 at a time).</summary>
    private const int RowChunk = 4096;

    /// <summary>Output elements accumulated together when the innermost dimension is kept.</summary>
    private const int ColumnChunk = 512;

    /// <summary>float32 rows added into a float32 partial sum before it joins the double total.</summary>
    private const int FlushRows = 64;

    /// <inheritdoc />
    public void Run(OperatorContext context) => Reduce(context, Kind.Sum);

    /// <summary>Runs the node as a reduction of <paramref name="kind"/>.</summary>
    internal static void Reduce(OperatorContext context, Kind kind)
    {
        var data = context.Input(0);
        var shape = InferShape(context, data, context.OptionalInput(1), out var reduced, out var identity);
        var output = context.Output(0, data.ElementType, shape);
        if (output.ElementCount == 0) return;
        if (identity)
        {
            AxisHelper.CopyAll(context, data, output);
            return;
        }
        if (data.ElementCount == 0)
        {
            FillEmpty(kind, output);
            return;
        }
        var plan = Plan.Create(data.Shape, reduced);
        if (plan.Count == 1)
        {
            // Only size-1 dimensions are reduced: every reduction is of one element.
            AxisHelper.CopyAll(context, data, output);
            return;
        }
        switch (data.ElementType)
        {
            case ElementType.Float32:
            case ElementType.Float16:
                if (plan.InnerReduced) FloatRows(context, kind, plan, data, output);
                else FloatColumns(context, kind, plan, data, output);
                break;
            case ElementType.Int64:
                if (plan.InnerReduced) IntegerRows<long>(context, kind, plan, data, output);
                else IntegerColumns<long>(context, kind, plan, data, output);
                break;
            default:
                if (plan.InnerReduced) IntegerRows<int>(context, kind, plan, data, output);
                else IntegerColumns<int>(context, kind, plan, data, output);
                break;
        }
    }

    /// <summary>
    /// Checks the input and axes. Returns the output shape; <paramref name="reduced"/> flags the reduced
    /// axes, and <paramref name="identity"/> is true when empty axes with noop_with_empty_axes make the
    /// node an identity.
    /// </summary>
    internal static int[] InferShape(OperatorContext context, Tensor data, Tensor? axesInput, out bool[] reduced, out bool identity)
    {
        if (data.ElementType is not (ElementType.Float32 or ElementType.Float16 or ElementType.Int64 or ElementType.Int32))
            throw context.Error($"data must be float32, float16, int64 or int32, not {data.ElementType}");
        var keepDims = Flag(context, "keepdims", 1);
        var noop = Flag(context, "noop_with_empty_axes", 0);
        var attribute = context.Attributes.GetInts("axes");
        long[]? axes = attribute;
        if (axesInput is not null)
        {
            if (attribute is not null)
                throw context.Error($"axes is given both as an attribute {AxisHelper.Format(attribute)} and as input 1; use one");
            if (axesInput.Shape.Length != 1) throw context.Error($"axes (input 1) must be 1-D, not {axesInput}");
            axes = AxisHelper.ReadIndices(context, axesInput, "axes (input 1)");
        }

        var rank = data.Shape.Length;
        reduced = new bool[rank];
        identity = false;
        if (axes is null || axes.Length == 0)
        {
            if (noop)
            {
                identity = true;
                return (int[])data.Shape.Clone();
            }
            Array.Fill(reduced, true);
        }
        else
            foreach (var value in axes)
            {
                // A repeated axis is reduced once, as in ORT.
                reduced[AxisHelper.NormalizeAxis(context, value, rank, "axes value")] = true;
            }

        var shape = new List<int>(rank);
        for (var k = 0; k < rank; k++)
            if (!reduced[k]) shape.Add(data.Shape[k]);
            else if (keepDims) shape.Add(1);
        return shape.ToArray();
    }

    private static bool Flag(OperatorContext context, string name, long fallback)
    {
        var value = context.Attributes.GetInt(name, fallback);
        return value is 0 or 1 ? value == 1 : throw context.Error($"{name} must be 0 or 1, not {value}");
    }

    /// <summary>The results of reductions over empty sets, as in ORT: sums and means 0, maxima −∞ (the lowest value for integers).</summary>
    private static void FillEmpty(Kind kind, Tensor output)
    {
        switch (output.ElementType)
        {
            case ElementType.Float32:
                output.Span<float>().Fill(kind switch { Kind.Max => float.NegativeInfinity, _ => 0 });
                break;
            case ElementType.Float16:
                output.Span<Half>().Fill(kind switch { Kind.Max => Half.NegativeInfinity, _ => Half.Zero });
                break;
            case ElementType.Int64:
                output.Span<long>().Fill(kind == Kind.Max ? long.MinValue : 0);
                break;
            default:
                output.Span<int>().Fill(kind == Kind.Max ? int.MinValue : 0);
                break;
        }
    }

    /// <summary>
    /// The input's dimensions without the size-1 ones, neighbours of the same kind (reduced or kept)
    /// merged, split into the innermost dimension and the outer kept and reduced ones (with strides).
    /// Output elements are ordered like the kept dimensions, so the output is [outer kept…, inner when kept].
    /// </summary>
    private sealed class Plan
    {
        public long[] KeptSizes = [];
        public long[] KeptStrides = [];
        public long[] ReducedSizes = [];
        public long[] ReducedStrides = [];
        public int Inner = 1;
        public bool InnerReduced;
        /// <summary>Input elements per output element.</summary>
        public long Count = 1;
        /// <summary>Combinations of the outer reduced dimensions.</summary>
        public long ReducedRows = 1;

        public static Plan Create(ReadOnlySpan<int> shape, bool[] reduced)
        {
            var dims = new List<(long Size, bool Reduced)>();
            for (var k = 0; k < shape.Length; k++)
            {
                if (shape[k] == 1) continue;
                if (dims.Count > 0 && dims[^1].Reduced == reduced[k]) dims[^1] = (dims[^1].Size * shape[k], reduced[k]);
                else dims.Add((shape[k], reduced[k]));
            }
            var plan = new Plan();
            if (dims.Count == 0) return plan;
            var strides = new long[dims.Count];
            long stride = 1;
            for (var k = dims.Count - 1; k >= 0; k--)
            {
                strides[k] = stride;
                stride *= dims[k].Size;
            }
            plan.Inner = (int)dims[^1].Size;
            plan.InnerReduced = dims[^1].Reduced;
            var outer = Enumerable.Range(0, dims.Count - 1).ToArray();
            var kept = outer.Where(k => !dims[k].Reduced).ToArray();
            var sums = outer.Where(k => dims[k].Reduced).ToArray();
            plan.KeptSizes = kept.Select(k => dims[k].Size).ToArray();
            plan.KeptStrides = kept.Select(k => strides[k]).ToArray();
            plan.ReducedSizes = sums.Select(k => dims[k].Size).ToArray();
            plan.ReducedStrides = sums.Select(k => strides[k]).ToArray();
            foreach (var size in plan.ReducedSizes) plan.ReducedRows *= size;
            plan.Count = plan.ReducedRows * (plan.InnerReduced ? plan.Inner : 1);
            return plan;
        }

        /// <summary>The input offset of element <paramref name="index"/> of dimensions <paramref name="sizes"/> (innermost last).</summary>
        public static long Offset(long index, long[] sizes, long[] strides)
        {
            long offset = 0;
            for (var k = sizes.Length - 1; k >= 0 && index > 0; k--)
            {
                offset += index % sizes[k] * strides[k];
                index /= sizes[k];
            }
            return offset;
        }
    }

    /// <summary>Runs <paramref name="body"/> over [0, items), spread over threads when the reduction is large.</summary>
    private static void Spread(OperatorContext context, long items, long work, Action<long, long> body)
    {
        if (work < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism <= 1 || items == 1)
        {
            body(0, items);
            return;
        }
        var chunks = (int)Math.Min(items, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk => body(items * chunk / chunks, items * (chunk + 1) / chunks));
    }

    /// <summary>
    /// How many pieces each output's reduction is cut into when the innermost dimension is reduced: more
    /// than one only when there are too few outputs to share among the threads (a reduction of everything).
    /// </summary>
    private static int Splits(OperatorContext context, long outputs, long perOutput, long work)
    {
        var threads = context.Parallel.MaxDegreeOfParallelism;
        if (threads <= 1 || work < ParallelThreshold || outputs >= threads * 4L) return 1;
        return (int)Math.Clamp(threads * 4L / outputs, 1, Math.Max(1, perOutput / RowChunk));
    }

    /// <summary>
    /// float32/float16 reduction when the innermost dimension is reduced: each output is the reduction
    /// of ReducedRows contiguous runs of Inner elements.
    /// </summary>
    private static void FloatRows(OperatorContext context, Kind kind, Plan plan, Tensor data, Tensor output)
    {
        var half = data.ElementType == ElementType.Float16;
        var source = (nint)AxisHelper.Data(data);
        var destination = (nint)AxisHelper.Data(output);
        var outputs = (long)output.ElementCount;
        var perOutput = plan.Count;
        var splits = Splits(context, outputs, perOutput, data.ElementCount);
        var partials = splits > 1 ? new double[outputs * splits] : null;

        void Items(long start, long end)
        {
            Span<float> buffer = half ? stackalloc float[RowChunk] : default;
            for (var item = start; item < end; item++)
            {
                var o = item / splits;
                var piece = item % splits;
                var baseOffset = Plan.Offset(o, plan.KeptSizes, plan.KeptStrides);
                var value = kind == Kind.Max ? double.NegativeInfinity : 0;
                // The piece's part of this output's reduced elements, in input order.
                var index = perOutput * piece / splits;
                var last = perOutput * (piece + 1) / splits;
                while (index < last)
                {
                    var row = index / plan.Inner;
                    var column = (int)(index % plan.Inner);
                    var length = (int)Math.Min(plan.Inner - column, last - index);
                    var offset = baseOffset + Plan.Offset(row, plan.ReducedSizes, plan.ReducedStrides) + column;
                    for (var c = 0; c < length; c += RowChunk)
                    {
                        var values = Load(source, half, offset + c, Math.Min(RowChunk, length - c), buffer);
                        value = kind == Kind.Max ? Math.Max(value, TensorPrimitives.Max(values)) : value + TensorPrimitives.Sum(values);
                    }
                    index += length;
                }
                if (partials is not null) partials[item] = value;
                else Store(destination, half, o, Finish(kind, value, perOutput));
            }
        }

        Spread(context, outputs * splits, data.ElementCount, Items);
        if (partials is null) return;
        for (long o = 0; o < outputs; o++)
        {
            var value = partials[o * splits];
            for (var piece = 1; piece < splits; piece++)
                value = kind == Kind.Max ? Math.Max(value, partials[o * splits + piece]) : value + partials[o * splits + piece];
            Store(destination, half, o, Finish(kind, value, perOutput));
        }
    }

    /// <summary>
    /// float32/float16 reduction when the innermost dimension is kept: each run of up to
    /// <see cref="ColumnChunk"/> output elements accumulates ReducedRows input runs elementwise.
    /// </summary>
    private static void FloatColumns(OperatorContext context, Kind kind, Plan plan, Tensor data, Tensor output)
    {
        var half = data.ElementType == ElementType.Float16;
        var source = (nint)AxisHelper.Data(data);
        var destination = (nint)AxisHelper.Data(output);
        var inner = plan.Inner;
        var chunks = (inner + ColumnChunk - 1) / ColumnChunk;
        var rows = output.ElementCount / inner;
        var items = (long)rows * chunks;

        void Items(long start, long end)
        {
            Span<float> accumulator = stackalloc float[ColumnChunk];
            Span<double> totals = stackalloc double[ColumnChunk];
            Span<float> buffer = half ? stackalloc float[ColumnChunk] : default;
            for (var item = start; item < end; item++)
            {
                var row = item / chunks;
                var c0 = (int)(item % chunks) * ColumnChunk;
                var length = Math.Min(ColumnChunk, inner - c0);
                var baseOffset = Plan.Offset(row, plan.KeptSizes, plan.KeptStrides) + c0;
                var acc = accumulator[..length];
                var total = totals[..length];
                total.Clear();
                Load(source, half, baseOffset, length, buffer).CopyTo(acc);
                for (long r = 1; r < plan.ReducedRows; r++)
                {
                    var values = Load(source, half, baseOffset + Plan.Offset(r, plan.ReducedSizes, plan.ReducedStrides), length, buffer);
                    if (kind == Kind.Max)
                    {
                        TensorPrimitives.Max(acc, values, acc);
                        continue;
                    }
                    if (r % FlushRows == 0)
                    {
                        // Keep the float32 partial sums short; the long-run total is in double.
                        for (var j = 0; j < length; j++) total[j] += acc[j];
                        values.CopyTo(acc);
                    }
                    else TensorPrimitives.Add(acc, values, acc);
                }
                var outputOffset = row * inner + c0;
                for (var j = 0; j < length; j++)
                    Store(destination, half, outputOffset + j, kind == Kind.Max ? acc[j] : Finish(kind, total[j] + acc[j], plan.Count));
            }
        }

        Spread(context, items, data.ElementCount, Items);
    }

    /// <summary><paramref name="length"/> float32 values at <paramref name="offset"/>: in place, or widened from float16 into <paramref name="buffer"/>.</summary>
    private static ReadOnlySpan<float> Load(nint source, bool half, long offset, int length, Span<float> buffer)
    {
        if (!half) return new ReadOnlySpan<float>((float*)source + offset, length);
        var values = buffer[..length];
        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)source + offset, length), values);
        return values;
    }

    private static double Finish(Kind kind, double value, long count) => kind == Kind.Mean ? value / count : value;

    /// <summary>Writes a result as float32, or rounded to float16 through float32 as ORT does.</summary>
    private static void Store(nint destination, bool half, long index, double value)
    {
        if (half) ((Half*)destination)[index] = (Half)(float)value;
        else ((float*)destination)[index] = (float)value;
    }

    /// <summary>Integer reduction when the innermost dimension is reduced (sums wrap; means truncate).</summary>
    private static void IntegerRows<T>(OperatorContext context, Kind kind, Plan plan, Tensor data, Tensor output)
        where T : unmanaged, IBinaryInteger<T>, IMinMaxValue<T>
    {
        var source = (nint)AxisHelper.Data(data);
        var destination = (nint)AxisHelper.Data(output);
        var outputs = (long)output.ElementCount;
        var perOutput = plan.Count;
        var splits = Splits(context, outputs, perOutput, data.ElementCount);
        var partials = splits > 1 ? new T[outputs * splits] : null;

        void Items(long start, long end)
        {
            for (var item = start; item < end; item++)
            {
                var o = item / splits;
                var piece = item % splits;
                var baseOffset = Plan.Offset(o, plan.KeptSizes, plan.KeptStrides);
                var value = kind == Kind.Max ? T.MinValue : T.Zero;
                var index = perOutput * piece / splits;
                var last = perOutput * (piece + 1) / splits;
                while (index < last)
                {
                    var row = index / plan.Inner;
                    var column = (int)(index % plan.Inner);
                    var length = (int)Math.Min(plan.Inner - column, last - index);
                    var values = new ReadOnlySpan<T>((T*)source + baseOffset + Plan.Offset(row, plan.ReducedSizes, plan.ReducedStrides) + column, length);
                    value = kind == Kind.Max ? T.Max(value, TensorPrimitives.Max(values)) : value + TensorPrimitives.Sum(values);
                    index += length;
                }
                if (partials is not null) partials[item] = value;
                else ((T*)destination)[o] = FinishInteger(kind, value, perOutput);
            }
        }

        Spread(context, outputs * splits, data.ElementCount, Items);
        if (partials is null) return;
        for (long o = 0; o < outputs; o++)
        {
            var value = partials[o * splits];
            for (var piece = 1; piece < splits; piece++)
                value = kind == Kind.Max ? T.Max(value, partials[o * splits + piece]) : value + partials[o * splits + piece];
            ((T*)destination)[o] = FinishInteger(kind, value, perOutput);
        }
    }

    /// <summary>Integer reduction when the innermost dimension is kept: output runs accumulate input runs elementwise.</summary>
    private static void IntegerColumns<T>(OperatorContext context, Kind kind, Plan plan, Tensor data, Tensor output)
        where T : unmanaged, IBinaryInteger<T>, IMinMaxValue<T>
    {
        var source = (nint)AxisHelper.Data(data);
        var destination = (nint)AxisHelper.Data(output);
        var inner = plan.Inner;
        var chunks = (inner + ColumnChunk - 1) / ColumnChunk;
        var rows = output.ElementCount / inner;
        var items = (long)rows * chunks;

        void Items(long start, long end)
        {
            for (var item = start; item < end; item++)
            {
                var row = item / chunks;
                var c0 = (int)(item % chunks) * ColumnChunk;
                var length = Math.Min(ColumnChunk, inner - c0);
                var baseOffset = Plan.Offset(row, plan.KeptSizes, plan.KeptStrides) + c0;
                // Accumulate straight into the output run.
                var acc = new Span<T>((T*)destination + row * inner + c0, length);
                new ReadOnlySpan<T>((T*)source + baseOffset, length).CopyTo(acc);
                for (long r = 1; r < plan.ReducedRows; r++)
                {
                    var values = new ReadOnlySpan<T>((T*)source + baseOffset + Plan.Offset(r, plan.ReducedSizes, plan.ReducedStrides), length);
                    if (kind == Kind.Max) TensorPrimitives.Max(acc, values, acc);
                    else TensorPrimitives.Add(acc, values, acc);
                }
                if (kind == Kind.Mean)
                    for (var j = 0; j < length; j++) acc[j] = FinishInteger(kind, acc[j], plan.Count);
            }
        }

        Spread(context, items, data.ElementCount, Items);
    }

    private static T FinishInteger<T>(Kind kind, T value, long count) where T : IBinaryInteger<T> =>
        kind == Kind.Mean ? value / T.CreateTruncating(count) : value;
}
