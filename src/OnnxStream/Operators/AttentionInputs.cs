using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// The operands of a fused attention node (see <see cref="Graph.Passes.AttentionFusion"/>), checked and as
/// float32: per item of the broadcast batch, where its Q, K, V and mask matrices start, and the scores'
/// scale and mask. The scores of item <c>i</c> are <c>Q[i]·K'[i]</c> ([Lq, Lk]), scaled, masked, softmaxed
/// along each row and multiplied by <c>V[i]</c> ([Lk, Dv]); the output is [batch..., Lq, Dv].
/// </summary>
internal sealed unsafe class AttentionInputs : IDisposable
{
    private readonly List<Tensor> _owned = [];
    private readonly float* _mask;

    private AttentionInputs(OperatorContext context)
    {
        try
        {
            var q = context.Input(0);
            var k = context.Input(1);
            var v = context.Input(2);
            foreach (var (tensor, name) in new[] { (q, "Q"), (k, "K"), (v, "V") })
                if (tensor.Shape.Length < 2) throw context.Error($"{name} must have at least 2 dimensions, got {AxisHelper.Format(tensor.Shape)}");
            KTransposed = context.Attributes.GetInt("k_transposed", 0) != 0;
            Lq = q.Shape[^2];
            D = q.Shape[^1];
            var (kRows, kColumns) = (k.Shape[^2], k.Shape[^1]);
            Lk = KTransposed ? kRows : kColumns;
            if ((KTransposed ? kColumns : kRows) != D)
                throw context.Error($"Q {AxisHelper.Format(q.Shape)} and K {AxisHelper.Format(k.Shape)}{(KTransposed ? " (transposed)" : "")} do not multiply");
            if (v.Shape[^2] != Lk)
                throw context.Error($"V {AxisHelper.Format(v.Shape)} has {v.Shape[^2]} rows; the scores have {Lk} columns");
            Dv = v.Shape[^1];
            if (!Shapes.TryBroadcast(q.Shape.AsSpan(0, q.Shape.Length - 2), k.Shape.AsSpan(0, k.Shape.Length - 2), out var batch))
                throw context.Error($"the batch dimensions of Q {AxisHelper.Format(q.Shape)} and K {AxisHelper.Format(k.Shape)} do not broadcast");
            var vBatch = v.Shape.AsSpan(0, v.Shape.Length - 2);
            if (!Shapes.TryBroadcast(batch, vBatch, out var withV) || !withV.AsSpan().SequenceEqual(batch))
                throw context.Error($"the batch dimensions of V {AxisHelper.Format(v.Shape)} do not broadcast to the scores' {AxisHelper.Format(batch)}");
            Batch = checked((int)AxisHelper.Product(batch, 0, batch.Length));
            OutputShape = [.. batch, Lq, Dv];
            int[] scoresShape = [.. batch, Lq, Lk];
            var softmaxAxis = AxisHelper.NormalizeAxis(context, context.Attributes.GetInt("softmax_axis", -1), scoresShape.Length, "softmax_axis");
            if (softmaxAxis != scoresShape.Length - 1)
                throw context.Error($"the softmax is over axis {softmaxAxis} of the scores {AxisHelper.Format(scoresShape)}, not the last; run this model with plain attention");
            OutputType = q.ElementType == ElementType.Float16 || k.ElementType == ElementType.Float16 || v.ElementType == ElementType.Float16
                ? ElementType.Float16
                : ElementType.Float32;

            Q = Float32(context, q, "Q");
            K = Float32(context, k, "K");
            V = Float32(context, v, "V");
            QOffsets = ItemOffsets(batch, q.Shape.AsSpan(0, q.Shape.Length - 2), (long)Lq * D);
            KOffsets = ItemOffsets(batch, k.Shape.AsSpan(0, k.Shape.Length - 2), (long)Lk * D);
            VOffsets = ItemOffsets(batch, vBatch, (long)Lk * Dv);

            if (context.OptionalInput(3) is { } scale)
            {
                if (scale.ElementCount != 1 || scale.ElementType is not (ElementType.Float32 or ElementType.Float16))
                    throw context.Error($"the scale must be one float value, not {scale}");
                // A float16 weight stays float16 under the float16 precisions.
                Scale = scale.ElementType == ElementType.Float16 ? (float)scale.Span<Half>()[0] : scale.Span<float>()[0];
                ScaleDivides = context.Attributes.GetInt("scale_divides", 0) != 0;
            }
            if (context.OptionalInput(4) is { } mask)
            {
                var view = scoresShape;
                if (context.OptionalInput(5) is { } viewShape)
                    view = ReshapeOperator.InferShape(context, scoresShape, AxisHelper.ReadIndices(context, viewShape, "the mask view shape"),
                        context.Attributes.GetInt("mask_view_allowzero", 0) != 0);
                if (view.Length < 2 || view[^2] != Lq || view[^1] != Lk)
                    throw context.Error($"the scores viewed as {AxisHelper.Format(view)} for the mask do not end with [{Lq},{Lk}]");
                if (!Shapes.TryBroadcast(view, mask.Shape, out var masked) || !masked.AsSpan().SequenceEqual(view))
                    throw context.Error($"the mask {AxisHelper.Format(mask.Shape)} does not broadcast to the scores {AxisHelper.Format(view)} without enlarging them");
                if (context.OptionalInput(6) is { } backShape)
                {
                    var back = ReshapeOperator.InferShape(context, view, AxisHelper.ReadIndices(context, backShape, "the scores shape"),
                        context.Attributes.GetInt("scores_allowzero", 0) != 0);
                    if (!back.AsSpan().SequenceEqual(scoresShape))
                        throw context.Error($"the masked scores are reshaped to {AxisHelper.Format(back)}, not back to {AxisHelper.Format(scoresShape)}");
                }
                var maskFloat = Float32(context, mask, "the mask");
                _mask = (float*)AxisHelper.Data(maskFloat);
                int rows = mask.Shape.Length >= 2 ? mask.Shape[^2] : 1, columns = mask.Shape.Length >= 1 ? mask.Shape[^1] : 1;
                MaskRowStride = rows == 1 ? 0 : columns;
                MaskColumnStride = columns == 1 ? 0 : 1;
                MaskOffsets = ItemOffsets(view.AsSpan(0, view.Length - 2), mask.Shape.AsSpan(0, Math.Max(0, mask.Shape.Length - 2)), (long)rows * columns);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Reads and checks the node's inputs; dispose to free the float32 copies of float16 inputs.</summary>
    public static AttentionInputs Create(OperatorContext context) => new(context);

    /// <summary>Q as float32, [..., Lq, D].</summary>
    public Tensor Q { get; } = null!;

    /// <summary>K' as float32: [..., D, Lk], or K [..., Lk, D] when <see cref="KTransposed"/>.</summary>
    public Tensor K { get; } = null!;

    /// <summary>V as float32, [..., Lk, Dv].</summary>
    public Tensor V { get; } = null!;

    /// <summary>Whether <see cref="K"/> is stored [Lk, D] per item (the scores are Q·Kᵀ).</summary>
    public bool KTransposed { get; }

    /// <summary>Items of the broadcast batch.</summary>
    public int Batch { get; }

    /// <summary>Query rows, key columns, Q/K width, V width.</summary>
    public int Lq { get; }

    /// <inheritdoc cref="Lq"/>
    public int Lk { get; }

    /// <inheritdoc cref="Lq"/>
    public int D { get; }

    /// <inheritdoc cref="Lq"/>
    public int Dv { get; }

    /// <summary>Per batch item, the element offset of its matrix in <see cref="Q"/>, <see cref="K"/> and <see cref="V"/>.</summary>
    public long[] QOffsets { get; } = [];

    /// <inheritdoc cref="QOffsets"/>
    public long[] KOffsets { get; } = [];

    /// <inheritdoc cref="QOffsets"/>
    public long[] VOffsets { get; } = [];

    /// <summary>[batch..., Lq, Dv].</summary>
    public int[] OutputShape { get; } = [];

    /// <summary>float16 when any of Q, K, V is.</summary>
    public ElementType OutputType { get; }

    /// <summary>The scale, or null when the scores are not scaled.</summary>
    public float? Scale { get; }

    /// <summary>Whether the scores are divided by <see cref="Scale"/> rather than multiplied.</summary>
    public bool ScaleDivides { get; }

    private long[] MaskOffsets { get; } = [];

    private long MaskRowStride { get; }

    private long MaskColumnStride { get; }

    /// <summary>Whether an additive mask applies to the scores.</summary>
    public bool HasMask => _mask is not null;

    /// <summary>Whether <see cref="ScaleAndMask"/> changes anything.</summary>
    public bool TransformsScores => Scale is not null || _mask is not null;

    /// <summary>
    /// Applies the scale and the mask, in the graph's order, to <paramref name="scores"/>: the columns
    /// <paramref name="column"/>.. of row <paramref name="row"/> of item <paramref name="item"/>.
    /// </summary>
    public void ScaleAndMask(Span<float> scores, int item, int row, int column)
    {
        if (Scale is { } scale)
        {
            if (ScaleDivides) TensorPrimitives.Divide(scores, scale, scores);
            else TensorPrimitives.Multiply(scores, scale, scores);
        }
        if (_mask is null) return;
        var mask = _mask + MaskOffsets[item] + row * MaskRowStride + column * MaskColumnStride;
        if (MaskColumnStride == 0) TensorPrimitives.Add(scores, *mask, scores);
        else TensorPrimitives.Add(scores, new ReadOnlySpan<float>(mask, scores.Length), scores);
    }

    /// <summary>Frees the float32 copies.</summary>
    public void Dispose()
    {
        foreach (var tensor in _owned) tensor.Dispose();
        _owned.Clear();
    }

    private Tensor Float32(OperatorContext context, Tensor tensor, string name)
    {
        var result = Layout.ToFloat32(context, tensor, name, out var owned);
        if (owned) _owned.Add(result);
        return result;
    }

    /// <summary>
    /// For each item of <paramref name="batch"/> (row-major), the element offset of the matching matrix of an operand
    /// whose batch dimensions <paramref name="operand"/> broadcast to it (right-aligned; size 1 repeats).
    /// </summary>
    private static long[] ItemOffsets(ReadOnlySpan<int> batch, ReadOnlySpan<int> operand, long matrixElements)
    {
        var count = checked((int)AxisHelper.Product(batch, 0, batch.Length));
        var offsets = new long[count];
        var strides = new long[batch.Length];
        long stride = matrixElements;
        for (var d = 1; d <= batch.Length; d++)
        {
            var size = d <= operand.Length ? operand[^d] : 1;
            strides[^d] = size == 1 ? 0 : stride;
            stride *= size;
        }
        var index = new int[batch.Length];
        for (var item = 0; item < count; item++)
        {
            long offset = 0;
            for (var d = 0; d < index.Length; d++) offset += index[d] * strides[d];
            offsets[item] = offset;
            for (var d = index.Length - 1; d >= 0 && ++index[d] == batch[d]; d--) index[d] = 0;
        }
        return offsets;
    }
}
