using System.Buffers;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Kernels;
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

    /// <summary>
    /// Scores per work item when all keys fit in one block: a [rows, keys] float block of 256 KiB, large enough that
    /// the three native calls of an item cost little beside its work, small enough to stay in L2.
    /// </summary>
    private const int SingleBlockScores = 1 << 16;

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
        // All keys in one block (cross-attention): more rows per item, so the native calls per item stay few.
        var rowBlock = inputs.Lk <= KeyBlock ? Math.Max(RowBlock, SingleBlockScores / inputs.Lk) : RowBlock;
        var plan = new Plan(inputs, output, Math.Min(rowBlock, inputs.Lq), Math.Min(KeyBlock, inputs.Lk));
        var items = inputs.Batch * plan.RowBlocks;
        var workers = Math.Min(context.Parallel.MaxDegreeOfParallelism, items);
        using var scratch = context.Scratch(ElementType.Float32, [workers, plan.WorkerFloats]);
        var scratchBase = (nint)scratch.Buffer<float>().Pointer;
        var next = -1;
        void Work(int worker)
        {
            var memory = (float*)scratchBase + (long)worker * plan.WorkerFloats;
            if (plan.SingleKeyBlock)
            {
                using var kernels = new WorkerKernels();
                for (int item; (item = Interlocked.Increment(ref next)) < items;) plan.RunSingleBlock(item, memory, kernels);
                return;
            }
            for (int item; (item = Interlocked.Increment(ref next)) < items;) plan.Run(item, memory);
        }
        if (workers == 1) Work(0);
        else Parallel.For(0, workers, context.Parallel, Work);
    }

    /// <summary>
    /// A worker's native products for one batch item whose keys all fit in one block: Q·Kᵀ and P·V as XNNPACK
    /// fully-connected operators packed from that item's K and V (tiny: 77×40 for cross-attention) on the worker's
    /// own one-thread pool, reused for every row block of the item the worker takes.
    /// </summary>
    private sealed class WorkerKernels : IDisposable
    {
        public XnnThreadPool Pool { get; } = XnnThreadPool.Create(1);
        public int BatchItem { get; private set; } = -1;
        public FullyConnectedOperator? Scores { get; private set; }
        public FullyConnectedOperator? Values { get; private set; }

        public void Prepare(int batchItem, AttentionInputs inputs, float* k, float* v)
        {
            if (batchItem == BatchItem) return;
            Scores?.Dispose();
            Values?.Dispose();
            Scores = Values = null;
            var (lk, d, dv) = (inputs.Lk, inputs.D, inputs.Dv);
            // Scores: output channels = keys, input channels = D; K is [Lk, D] when transposed by the graph, else [D, Lk].
            // Without a mask the scale goes into the packed keys, which saves a pass over every score block.
            var keys = new ReadOnlySpan<float>(k, lk * d);
            float[]? scaled = null;
            if (ScaleFolded(inputs))
            {
                scaled = ArrayPool<float>.Shared.Rent(keys.Length);
                var scale = inputs.Scale!.Value;
                if (inputs.ScaleDivides) TensorPrimitives.Divide(keys, scale, scaled);
                else TensorPrimitives.Multiply(keys, scale, scaled);
                keys = scaled.AsSpan(0, keys.Length);
            }
            try
            {
                Scores = FullyConnectedOperator.CreateFloat32(d, lk, keys, transposeWeights: !inputs.KTransposed);
            }
            finally
            {
                if (scaled is not null) ArrayPool<float>.Shared.Return(scaled);
            }
            Values = FullyConnectedOperator.CreateFloat32(lk, dv, new ReadOnlySpan<float>(v, lk * dv), transposeWeights: true);
            BatchItem = batchItem;
        }

        /// <summary>Whether the scale is applied to the packed keys (no mask: the scores need nothing else before the softmax).</summary>
        public static bool ScaleFolded(AttentionInputs inputs) => inputs.Scale is not null && !inputs.HasMask;

        public void Dispose()
        {
            Scores?.Dispose();
            Values?.Dispose();
            Pool.Dispose();
        }
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
        /// Floats of a worker's scratch. With all keys in one block: the scores [rows, keys] (the softmax runs in place)
        /// and, for a float16 output, the rows' float32 output [rows, Dv]. Otherwise: scores [rows, keys], output
        /// accumulators [rows, Dv], running max and sum, the current key block as [D, keys] and value block as
        /// [keys, Dv], both zero-padded to whole vectors, and the rows' new maxima.
        /// </summary>
        public int WorkerFloats => SingleKeyBlock
            ? rowBlock * inputs.Lk + (_halfOutput ? rowBlock * inputs.Dv : 0)
            : rowBlock * _keyStride + rowBlock * _valueStride + 2 * rowBlock + inputs.D * _keyStride + keyBlock * _valueStride + rowBlock;

        /// <summary>Rows of query block <paramref name="item"/> (batch item × row block) into the output.</summary>
        public void Run(int item, float* memory)
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
                PackKeys(k, key0, keys, paddedKeys, keyBlockT);
                PackValues(v, key0, keys, valueBlock);
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

        /// <summary>Whether every key fits in one block: then the block products run natively (<see cref="RunSingleBlock"/>).</summary>
        public bool SingleKeyBlock => inputs.Lk <= keyBlock;

        /// <summary>
        /// <see cref="Run"/> when all keys fit in one block: plain softmax attention on the item's rows (no running
        /// rescale is needed), its two products and the softmax native (the worker's operators and pool).
        /// </summary>
        public void RunSingleBlock(int item, float* memory, WorkerKernels kernels)
        {
            var (lq, lk, d, dv) = (inputs.Lq, inputs.Lk, inputs.D, inputs.Dv);
            var batchItem = item / RowBlocks;
            var row0 = item % RowBlocks * rowBlock;
            var rows = Math.Min(rowBlock, lq - row0);
            kernels.Prepare(batchItem, inputs, _k + inputs.KOffsets[batchItem], _v + inputs.VOffsets[batchItem]);
            var q = _q + inputs.QOffsets[batchItem] + (long)row0 * d;
            using var scores = Memory.NativeBuffer<float>.Wrap(memory, rows * lk);
            using (var input = Memory.NativeBuffer<float>.Wrap(q, rows * d))
                kernels.Scores!.Run(kernels.Pool, rows, input, scores);
            if (inputs.HasMask)
            {
                var block = new Span<float>(memory, rows * lk);
                for (var r = 0; r < rows; r++) inputs.ScaleAndMask(block.Slice(r * lk, lk), batchItem, row0 + r, 0);
            }
            ActivationKernels.Softmax(kernels.Pool, rows, lk, scores, scores);
            // The rows of one batch item are contiguous in the output: P·V straight into it when it is float32.
            var outputRows = (long)batchItem * lq * dv + (long)row0 * dv;
            var values = _halfOutput ? memory + rowBlock * lk : (float*)_output + outputRows;
            using (var result = Memory.NativeBuffer<float>.Wrap(values, rows * dv))
                kernels.Values!.Run(kernels.Pool, rows, scores, result);
            if (_halfOutput)
                TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>(values, rows * dv), new Span<Half>((Half*)_output + outputRows, rows * dv));
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
