using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// Attention slicing, as the original OnnxStream's fused attention ops: the attention subgraph (see
/// <see cref="Graph.Passes.AttentionFusion"/>) computed for attribute <c>slices</c> blocks of query rows in turn,
/// each with the plain operations (batched matmul, scale and mask, softmax, batched matmul) over every batch
/// item at once, so only one block's scores [batch, Lq/slices, Lk] exist at a time. Float32, and float16
/// through float32 (Q, K and V widened whole: they are small next to the scores).
/// </summary>
internal sealed unsafe class SlicedAttentionOperator : IOperator
{
    /// <summary>Score rows below which scaling and masking stay on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var slices = context.Attributes.GetInt("slices", 2);
        if (slices < 1) throw context.Error($"slices must be at least 1, not {slices}");
        using var inputs = AttentionInputs.Create(context);
        var output = context.Output(0, inputs.OutputType, inputs.OutputShape);
        if (output.ElementCount == 0) return;
        var result = output.ElementType == ElementType.Float32 ? output : context.Scratch(ElementType.Float32, inputs.OutputShape);
        try
        {
            if (inputs.Lk == 0 || inputs.D == 0) result.Span<float>().Clear();
            else Compute(context, inputs, (int)Math.Min(slices, inputs.Lq), result);
            if (result != output) Layout.FromFloat32(context, result, output);
        }
        finally
        {
            if (result != output) result.Dispose();
        }
    }

    private static void Compute(OperatorContext context, AttentionInputs inputs, int slices, Tensor result)
    {
        var (batch, lq, lk, d, dv) = (inputs.Batch, inputs.Lq, inputs.Lk, inputs.D, inputs.Dv);
        var sliceRows = (lq + slices - 1) / slices;
        using var scores = context.Scratch(ElementType.Float32, [batch, sliceRows, lk]);
        var s = scores.Buffer<float>();
        var q = (float*)AxisHelper.Data(inputs.Q);
        var k = (float*)AxisHelper.Data(inputs.K);
        var v = (float*)AxisHelper.Data(inputs.V);
        var o = (float*)AxisHelper.Data(result);
        for (var row0 = 0; row0 < lq; row0 += sliceRows)
        {
            var rows = Math.Min(sliceRows, lq - row0);
            var scoreOffsets = Enumerable.Range(0, batch).Select(i => (long)i * rows * lk).ToArray();
            MultiplyItems(context.Pool, rows, d, lk, inputs.KTransposed, q + (long)row0 * d, inputs.QOffsets, k, inputs.KOffsets, s.Pointer,
                (long)rows * lk);
            if (inputs.TransformsScores) ScaleAndMask(context, inputs, s.Pointer, rows, row0);
            ActivationKernels.Softmax(context.Pool, batch * rows, lk, s, s);
            MultiplyItems(context.Pool, rows, lk, dv, false, s.Pointer, scoreOffsets, v, inputs.VOffsets, o + (long)row0 * dv, (long)lq * dv);
        }
    }

    /// <summary>Scales and masks the [batch, rows, Lk] scores of the slice starting at query row <paramref name="row0"/>.</summary>
    private static void ScaleAndMask(OperatorContext context, AttentionInputs inputs, float* scores, int rows, int row0)
    {
        var lk = inputs.Lk;
        var pointer = (nint)scores;
        void Row(int index) =>
            inputs.ScaleAndMask(new Span<float>((float*)pointer + (long)index * lk, lk), index / rows, row0 + index % rows, 0);
        var count = inputs.Batch * rows;
        if ((long)count * lk < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism == 1)
            for (var index = 0; index < count; index++) Row(index);
        else
            Parallel.For(0, count, context.Parallel, Row);
    }

    /// <summary>
    /// C[i] = A[i]·B[i] ([m, k]·[k, n], B stored [n, k] when <paramref name="transposeB"/>) for each batch item, A and B
    /// at the given element offsets, C items <paramref name="cStride"/> apart: one kernel call when the items are
    /// evenly spaced (always, unless the batch broadcasts unevenly), else one per item.
    /// </summary>
    private static void MultiplyItems(XnnThreadPool pool, int m, int k, int n, bool transposeB, float* a, long[] aOffsets,
        float* b, long[] bOffsets, float* c, long cStride)
    {
        if (TryStride(aOffsets, out var aStride) && TryStride(bOffsets, out var bStride))
        {
            BatchMatMulKernel.Run(pool, new BatchMatMulShape(aOffsets.Length, m, k, n, transposeB), a + aOffsets[0], aStride,
                b + bOffsets[0], bStride, c, cStride);
            return;
        }
        for (var i = 0; i < aOffsets.Length; i++)
            BatchMatMulKernel.Run(pool, new BatchMatMulShape(1, m, k, n, transposeB), a + aOffsets[i], 0, b + bOffsets[i], 0,
                c + i * cStride, 0);
    }

    private static bool TryStride(long[] offsets, out long stride)
    {
        stride = offsets.Length > 1 ? offsets[1] - offsets[0] : 0;
        for (var i = 2; i < offsets.Length; i++)
            if (offsets[i] - offsets[0] != i * stride) return false;
        return stride >= 0;
    }
}
