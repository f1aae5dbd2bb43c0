using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// Memory-efficient (flash-style) attention for the subgraph <see cref="Graph.Passes.AttentionFusion"/> matches: each
/// work item (a batch item's block of query rows) walks the keys and values in blocks, keeping per row the
/// running maximum and sum of the softmax (online softmax: earlier partial results are rescaled when the
/// maximum grows) and the partial output. A worker holds one block of scores, its rows' accumulators and,
/// for a [Lk, D] K, a transposed copy of one key block; the score matrix never exists. Work items are
/// spread over <see cref="OperatorContext.Parallel"/>. Float32, and float16 through float32.
/// </summary>
internal sealed unsafe class FusedAttentionOperator : IOperator
{
    /// <summary>Query rows per work item: a multiple of <see cref="BlockGemm"/>'s 6-row tiles.</summary>
    private const int RowBlock = 60;

    /// <summary>Keys per block: a [60, 256] float block of scores is 60 KiB, in L2 beside its K and V blocks.</summary>
    private const int KeyBlock = 256;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        using var inputs = AttentionInputs.Create(context);
        var output = context.Output(0, inputs.OutputType, inputs.OutputShape);
        if (output.ElementCount == 0) return;
        if (inputs.Lk == 0)
        {
            output.Bytes.Clear();
            return;
        }
        var plan = new Plan(inputs, output, Math.Min(RowBlock, inputs.Lq), Math.Min(KeyBlock, inputs.Lk));
        var items = inputs.Batch * plan.RowBlocks;
        var workers = Math.Min(context.Parallel.MaxDegreeOfParallelism, items);
        using var scratch = context.Scratch(ElementType.Float32, [workers, plan.WorkerFloats]);
        var scratchBase = (nint)scratch.Buffer<float>().Pointer;
        var next = -1;
        void Work(int worker)
        {
            var memory = (float*)scratchBase + (long)worker * plan.WorkerFloats;
            var packedFor = -1; // the batch item whose only key block this worker's scratch holds packed
            for (int item; (item = Interlocked.Increment(ref next)) < items;) plan.Run(item, memory, ref packedFor);
        }
        if (workers == 1) Work(0);
        else Parallel.For(0, workers, context.Parallel, Work);
    }

    /// <summary>The blocking of one run and the work of one item.</summary>
    private sealed class Plan(AttentionInputs inputs, Tensor output, int rowBlock, int keyBlock)
    {
        private readonly float* _q = (float*)AxisHelper.Data(inputs.Q);
        private readonly float* _k = (float*)AxisHelper.Data(inputs.K);
        private readonly float* _v = (float*)AxisHelper.Data(inputs.V);
        private readonly byte* _output = AxisHelper.Data(output);
        private readonly bool _halfOutput = output.ElementType == ElementType.Float16;

        /// <summary>Key block and V width rounded up to whole SIMD vectors (the block products' padded columns).</summary>
        private readonly int _keyStride = RoundUp(keyBlock), _valueStride = RoundUp(inputs.Dv);

        public int RowBlocks { get; } = (inputs.Lq + rowBlock - 1) / rowBlock;

        /// <summary>
        /// Floats of a worker's scratch: scores [rows, keys], output accumulators [rows, Dv], running max and sum,
        /// the current key block as [D, keys] and value block as [keys, Dv], both zero-padded to whole vectors, and
        /// the rows' new maxima.
        /// </summary>
        public int WorkerFloats => rowBlock * _keyStride + rowBlock * _valueStride + 2 * rowBlock + inputs.D * _keyStride + keyBlock * _valueStride + rowBlock;

        /// <summary>
        /// Rows of query block <paramref name="item"/> (batch item × row block) into the output. When all keys fit
        /// in one block (cross-attention's 77), the packed K and V stay in the worker's scratch for the next row
        /// block of the same batch item (<paramref name="packedFor"/>), as items come in batch-item order.
        /// </summary>
        public void Run(int item, float* memory, ref int packedFor)
        {
            var (lq, lk, d, dv) = (inputs.Lq, inputs.Lk, inputs.D, inputs.Dv);
            var batchItem = item / RowBlocks;
            var row0 = item % RowBlocks * rowBlock;
            var rows = Math.Min(rowBlock, lq - row0);
            var scores = memory;
            var accumulators = scores + rowBlock * _keyStride;
            var max = new Span<float>(accumulators + rowBlock * _valueStride, rows);
            var sum = new Span<float>(accumulators + rowBlock * _valueStride + rowBlock, rows);
            var keyBlockT = accumulators + rowBlock * _valueStride + 2 * rowBlock;
            var valueBlock = keyBlockT + d * _keyStride;
            new Span<float>(accumulators, rows * _valueStride).Clear();
            max.Fill(float.NegativeInfinity);
            sum.Clear();

            var q = _q + inputs.QOffsets[batchItem] + (long)row0 * d;
            var k = _k + inputs.KOffsets[batchItem];
            var v = _v + inputs.VOffsets[batchItem];
            for (var key0 = 0; key0 < lk; key0 += keyBlock)
            {
                var keys = Math.Min(keyBlock, lk - key0);
                var paddedKeys = RoundUp(keys);
                if (keys < lk || packedFor != batchItem)
                {
                    PackKeys(k, key0, keys, paddedKeys, keyBlockT);
                    PackValues(v, key0, keys, valueBlock);
                    packedFor = keys < lk ? -1 : batchItem;
                }
                // Scores [rows, keys] = Q rows · K'[:, key0..] (the padded columns are computed and ignored).
                BlockGemm.Multiply(rows, paddedKeys, d, q, d, keyBlockT, paddedKeys, scores, _keyStride, accumulate: false);
                // Scale, mask and shift each row by its new running maximum; then one Exp over the whole block.
                var newMax = new Span<float>(valueBlock + keyBlock * _valueStride, rows);
                for (var r = 0; r < rows; r++)
                {
                    var row = new Span<float>(scores + r * _keyStride, keys);
                    inputs.ScaleAndMask(row, batchItem, row0 + r, key0);
                    newMax[r] = MathF.Max(max[r], TensorPrimitives.Max(row));
                    // Every score so far -inf: the row adds nothing yet (exp of -inf is 0).
                    TensorPrimitives.Subtract(row, float.IsNegativeInfinity(newMax[r]) ? 0f : newMax[r], row);
                }
                var block = new Span<float>(scores, (rows - 1) * _keyStride + keys);
                TensorPrimitives.Exp(block, block);
                for (var r = 0; r < rows; r++)
                {
                    if (float.IsNegativeInfinity(newMax[r])) continue;
                    var row = new Span<float>(scores + r * _keyStride, keys);
                    if (float.IsNegativeInfinity(max[r]))
                        sum[r] = TensorPrimitives.Sum(row); // the first keys with a score: the accumulators are still zero
                    else
                    {
                        var correction = MathF.Exp(max[r] - newMax[r]);
                        sum[r] = sum[r] * correction + TensorPrimitives.Sum(row);
                        if (correction != 1f)
                        {
                            var accumulator = new Span<float>(accumulators + r * _valueStride, dv);
                            TensorPrimitives.Multiply(accumulator, correction, accumulator);
                        }
                    }
                    max[r] = newMax[r];
                }
                // Accumulators [rows, Dv] += P · V[key0.., :].
                BlockGemm.Multiply(rows, _valueStride, keys, scores, _keyStride, valueBlock, _valueStride, accumulators, _valueStride, accumulate: true);
            }

            var outputRow0 = (long)batchItem * lq * dv + (long)row0 * dv;
            for (var r = 0; r < rows; r++)
            {
                var accumulator = new Span<float>(accumulators + r * _valueStride, dv);
                TensorPrimitives.Divide(accumulator, sum[r], accumulator);
                if (_halfOutput)
                    TensorPrimitives.ConvertToHalf(accumulator, new Span<Half>((Half*)_output + outputRow0 + (long)r * dv, dv));
                else
                    accumulator.CopyTo(new Span<float>((float*)_output + outputRow0 + (long)r * dv, dv));
            }
        }

        /// <summary>Keys key0.. of one batch item as [D, paddedKeys] (K' rows, or K transposed), zero past <paramref name="keys"/>.</summary>
        private void PackKeys(float* k, int key0, int keys, int paddedKeys, float* packed)
        {
            var (lk, d) = (inputs.Lk, inputs.D);
            for (var p = 0; p < d; p++)
            {
                var target = new Span<float>(packed + p * paddedKeys, paddedKeys);
                if (inputs.KTransposed)
                    for (var j = 0; j < keys; j++) target[j] = k[(long)(key0 + j) * d + p];
                else
                    new ReadOnlySpan<float>(k + (long)p * lk + key0, keys).CopyTo(target);
                target[keys..].Clear();
            }
        }

        /// <summary>Rows key0.. of one batch item's V as [keys, Dv padded], zero in the padding.</summary>
        private void PackValues(float* v, int key0, int keys, float* packed)
        {
            var dv = inputs.Dv;
            for (var j = 0; j < keys; j++)
            {
                var target = new Span<float>(packed + j * _valueStride, _valueStride);
                new ReadOnlySpan<float>(v + (long)(key0 + j) * dv, dv).CopyTo(target);
                target[dv..].Clear();
            }
        }

        private static int RoundUp(int count) => (count + BlockGemm.Width - 1) / BlockGemm.Width * BlockGemm.Width;
    }
}
