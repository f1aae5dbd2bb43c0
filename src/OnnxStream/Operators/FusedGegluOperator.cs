using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace OnnxStream.Operators;

/// <summary>
/// A GEGLU projection (see <see cref="Graph.Passes.GegluFusion"/>): x [..., K], W [K, 2H], b [2H] → y [..., H] with
/// <c>p = x·W + b</c>, <c>y = p[:H] · ((p[H:] · (erf(p[H:] / c) + 1)) · 0.5)</c>, c the <c>erf_divisor</c> attribute.
/// Computed a block of rows at a time: for each slice of the H output columns (the whole of them with the Ram provider,
/// which keeps it packed; within <see cref="OperatorContext.WeightSliceBytes"/> otherwise), an XNNPACK fully connected
/// operator of the slice's value and gate columns (and their bias) fills a small block of rows, from which the result's
/// columns are computed; a float16 W is multiplied as stored instead (see <see cref="DirectFullyConnectedKernel"/>; with the
/// Ram provider its transposed columns are kept). So neither the projection (2H wide) nor its halves ever exist whole. float32 arithmetic; a
/// float16 x gives a float16 y. W and b reach it as stored.
/// </summary>
internal sealed unsafe class FusedGegluOperator : IOperator
{
    /// <summary>Bytes of one block of projected rows (value and gate columns of a slice).</summary>
    private const long RowBlockBytes = 2 << 20;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var w = context.Input(1);
        var b = context.Input(2);
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16))
            throw context.Error($"x must be float32 or float16, not {x.ElementType}");
        if (x.Shape.Length < 1 || w.Shape is not [var k, var twoH] || twoH % 2 != 0 || x.Shape[^1] != k || b.Shape is not [var biasLength] || biasLength != twoH)
            throw context.Error($"x {AxisHelper.Format(x.Shape)}, W {AxisHelper.Format(w.Shape)} and b {AxisHelper.Format(b.Shape)} do not make a GEGLU projection [..., K]·[K, 2H] + [2H]");
        var h = twoH / 2;
        var divisor = context.Attributes.GetFloat("erf_divisor", MathF.Sqrt(2));
        int[] shape = [.. x.Shape[..^1], h];
        var y = context.Output(0, x.ElementType, shape);
        var rows = y.ElementCount / Math.Max(h, 1);
        if (y.ElementCount == 0) return;

        var xf = Layout.ToFloat32(context, x, "x", out var ownsX);
        var yf = y.ElementType == ElementType.Float32 ? y : context.Scratch(ElementType.Float32, shape);
        try
        {
            var kept = context.KeepsPreparedOperators && context.IsWeight(1) && context.IsWeight(2);
            var reader = context.WeightReader(1);
            // A float16 W runs the direct kernel as stored: its transpose kept whole with the Ram provider, else a slice at a
            // time (gathered and their transposed copy within the budget). Otherwise each thread's share of the budget holds
            // a slice's converted copy.
            var direct = w.ElementType == ElementType.Float16 && DirectFullyConnectedKernel.Supports(k);
            var slice = kept ? h : ChannelBlocks.Size(h, direct
                ? context.WeightSliceBytes / (2L * k * 2 * sizeof(Half))
                : ChannelBlocks.SliceBytesPerThread(context) / ((long)k * 2 * sizeof(float)));
            for (var h0 = 0; h0 < h; h0 += slice)
            {
                var columns = Math.Min(slice, h - h0);
                var owned = true;
                if (direct)
                {
                    var (first, count) = (h0, columns);
                    var weights = kept
                        ? context.Prepare(() => WeightColumns.GatherTransposed(context, w, null, [(first, count), (h + first, count)]), out owned)
                        : WeightColumns.GatherTransposed(context, w, reader, [(h0, columns), (h + h0, columns)]);
                    try
                    {
                        var bias = SliceBias(context, b, h0, columns);
                        Apply(context, (rowCount, input, output) => DirectFullyConnectedKernel.Run(context.Pool, rowCount, k, input, k,
                            weights.Buffer<Half>(), 2 * columns, bias, output, 2 * columns), k, xf, yf, rows, h, h0, columns, divisor);
                    }
                    finally
                    {
                        if (owned) weights.Dispose();
                    }
                    continue;
                }
                var projection = kept
                    ? context.Prepare(() => Pack(context, w, null, b, 0, columns), out owned)
                    : Pack(context, w, reader, b, h0, columns);
                try
                {
                    Apply(context, (count, input, output) => projection.Run(context.Pool, count, input, output), k, xf, yf, rows, h, h0,
                        columns, divisor);
                }
                finally
                {
                    if (owned) projection.Dispose();
                }
            }
            if (yf != y) Layout.FromFloat32(context, yf, y);
        }
        finally
        {
            if (ownsX) xf.Dispose();
            if (yf != y) yf.Dispose();
        }
    }

    /// <summary>
    /// A fully connected operator computing, per row, value columns h0..h0+columns then the same gate columns (H + h0..):
    /// those columns of W (from its file with <paramref name="reader"/>) and b gathered, converted to float32 and packed.
    /// </summary>
    private static FullyConnectedOperator Pack(OperatorContext context, Tensor w, Weights.WeightSliceReader? reader, Tensor b, int h0, int columns)
    {
        var (k, twoH) = (w.Shape[0], w.Shape[1]);
        var h = twoH / 2;
        using var gathered = context.Scratch(w.ElementType, [k, 2 * columns], w.Quantization);
        var destination = AxisHelper.Data(gathered);
        WeightColumns.Gather(w, reader, h0, columns, destination, 2 * columns);
        WeightColumns.Gather(w, reader, h + h0, columns, destination + (long)columns * w.ElementType.Size(), 2 * columns);
        var weights = Layout.ToFloat32(context, gathered, "W", out var ownsWeights);
        try
        {
            return FullyConnectedOperator.CreateFloat32(k, 2 * columns, weights.Span<float>(), SliceBias(context, b, h0, columns), transposeWeights: true);
        }
        finally
        {
            if (ownsWeights) weights.Dispose();
        }
    }

    /// <summary>The float32 bias of value columns h0..h0+columns then the same gate columns.</summary>
    private static float[] SliceBias(OperatorContext context, Tensor b, int h0, int columns)
    {
        var h = b.Shape[0] / 2;
        var bias = Layout.ToFloat32(context, b, "b", out var ownsBias);
        try
        {
            var values = new float[2 * columns];
            bias.Span<float>().Slice(h0, columns).CopyTo(values);
            bias.Span<float>().Slice(h + h0, columns).CopyTo(values.AsSpan(columns));
            return values;
        }
        finally
        {
            if (ownsBias) bias.Dispose();
        }
    }

    /// <summary>yf[r, h0..h0+columns) for every row r, a block of rows at a time.</summary>
    private static void Apply(OperatorContext context, Action<int, NativeBuffer<float>, NativeBuffer<float>> project, int k, Tensor x,
        Tensor y, int rows, int h, int h0, int columns, float divisor)
    {
        var blockRows = (int)Math.Clamp(RowBlockBytes / (2L * columns * sizeof(float)), 1, rows);
        using var block = context.Scratch(ElementType.Float32, [blockRows, 2 * columns]);
        var (input, output, projected) = ((nint)AxisHelper.Data(x), (nint)AxisHelper.Data(y), (nint)AxisHelper.Data(block));
        var threads = Math.Max(1, context.Parallel.MaxDegreeOfParallelism);
        for (var r0 = 0; r0 < rows; r0 += blockRows)
        {
            var count = Math.Min(blockRows, rows - r0);
            project(count, NativeBuffer<float>.Wrap((float*)input + (long)r0 * k, count * k), block.Buffer<float>());
            var first = r0;
            var workers = Math.Min(threads, count);
            Parallel.For(0, workers, context.Parallel, worker =>
            {
                var scratch = new float[columns];
                for (var r = count * worker / workers; r < count * (worker + 1) / workers; r++)
                {
                    var value = new ReadOnlySpan<float>((float*)projected + (long)r * 2 * columns, columns);
                    var gate = new ReadOnlySpan<float>((float*)projected + (long)r * 2 * columns + columns, columns);
                    var result = new Span<float>((float*)output + (long)(first + r) * h + h0, columns);
                    // As the exported graph computes it: value · ((gate · (erf(gate / c) + 1)) · 0.5).
                    TensorPrimitives.Divide(gate, divisor, scratch);
                    ErfOperator.Compute(scratch, scratch);
                    TensorPrimitives.Add(scratch, 1f, scratch);
                    TensorPrimitives.Multiply(gate, scratch, scratch);
                    TensorPrimitives.Multiply(scratch, 0.5f, scratch);
                    TensorPrimitives.Multiply(value, scratch, result);
                }
            });
        }
    }

    /// <inheritdoc />
    /// <remarks>W and b as stored: only the slice being packed is converted.</remarks>
    public bool TakesStoredWeight(int index) => index is 1 or 2;

    /// <inheritdoc />
    /// <remarks>A large W (SD 1.5's 16×16 level: 25 MiB in float16) is read a slice of columns at a time, row by row.</remarks>
    public bool ReadsWeightSlices(int index) => index == 1;
}
