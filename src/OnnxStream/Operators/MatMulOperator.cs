using System.Numerics;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX MatMul (NumPy matmul): A [..., M, K] · B [..., K, N] → [..., M, N], batch dimensions broadcast,
/// a 1-D A is a row vector and a 1-D B a column vector (their dimension is dropped from the result).
/// Float inputs run the shim's batched matmul in float32 (float16 activations are widened and the result
/// rounded; the output is float16 when either input is), or in float16 with
/// <see cref="OperatorContext.Float16Kernels"/>; int64 and int32 run a managed loop.
/// A weight B with no batch dimensions (every Linear layer) is one product over all of A's rows; with the
/// Ram provider it is packed once into an XNNPACK fully-connected operator kept for later runs; otherwise (with more
/// than a few rows) it is packed in slices of output columns, each written in place into the output, so only a slice
/// of B is ever widened (B reaches the operator as stored: float16 in fp16 folders). A float16 B computed in float32 is
/// not widened nor packed at all but multiplied as stored (see <see cref="DirectFullyConnectedKernel"/>): a slice at a
/// time, or with the Ram provider its transpose kept whole. Under static
/// activation quantization a quantized A with such a B in uint8 runs XNNPACK's uint8 fully connected operator
/// into a uint8 output (see <see cref="QuantizedOperands"/>); quantized operands otherwise are dequantized.
/// </summary>
internal sealed unsafe class MatMulOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var a = context.Input(0);
        var b = context.Input(1);
        var plan = InferShape(context, a, b);
        var quantized = context.IsWeight(1) && b.Shape.Length == 2 ? QuantizedOperands.ForProduct(context, a, b) : null;
        var byItem = quantized is null && !context.Float16Kernels && plan.OutputType == ElementType.Float16 && a.ElementType == ElementType.Float16 &&
                     plan.Batch.Length > 1 && (plan.BBatchIsOne || plan.BatchesMatch && b.ElementType is ElementType.Float16 or ElementType.Float32) &&
                     !(context.KeepsPreparedOperators && context.IsWeight(1));
        // A B left unread by the session is read a slice of columns at a time by the weight-slice product; every other
        // path reads it whole first.
        using var whole = context.WeightReader(1) is not null &&
                          (quantized is not null || byItem || plan.OutputType is not (ElementType.Float32 or ElementType.Float16) || !BySlices(context, plan, b))
            ? context.ReadWhole(1)
            : null;
        b = whole ?? b;
        if (quantized is { } outputQuantization)
        {
            MultiplyQUInt8(context, plan, a, b, outputQuantization);
            return;
        }
        var output = context.Output(0, plan.OutputType, plan.OutputShape);
        if (output.ElementCount == 0 || plan.K == 0) return;
        switch (plan.OutputType)
        {
            case ElementType.Int64:
                RunInteger<long>(context, plan, a, b, output);
                return;
            case ElementType.Int32:
                RunInteger<int>(context, plan, a, b, output);
                return;
        }

        if (context.Float16Kernels && output.ElementType == ElementType.Float16)
            Compute<Half>(context, plan, a, b, output);
        else if (byItem)
            ComputeFloat16ByItem(context, plan, a, b, output);
        else
            Compute<float>(context, plan, a, b, output);
    }

    /// <summary>Whether a float product runs <see cref="MultiplyByWeightSlices{T}"/>: a weight B [K, N] not kept, with more than a few rows.</summary>
    private static bool BySlices(OperatorContext context, MatMulPlan plan, Tensor b) =>
        context.IsWeight(1) && b.Shape.Length == 2 && !context.KeepsPreparedOperators &&
        plan.Batch.Length * plan.M > DirectRowsPerThread * context.Pool.ThreadCount;

    /// <summary>
    /// float16 data computed in float32 one batch item at a time (attention's P·V over heads), so only one
    /// item is ever widened: a float32 copy of the whole A would be twice A's size.
    /// </summary>
    private static void ComputeFloat16ByItem(OperatorContext context, MatMulPlan plan, Tensor a, Tensor b, Tensor output)
    {
        var (m, k, n) = (plan.M, plan.K, plan.N);
        var items = (int)plan.Batch.Length;
        var ownsSharedB = false;
        var sharedB = plan.BBatchIsOne ? Layout.ToFloat32(context, b, "B", out ownsSharedB) : null;
        using var aItem = context.Scratch(ElementType.Float32, [m, k]);
        using var bItem = plan.BBatchIsOne ? null : context.Scratch(ElementType.Float32, [k, n]);
        using var cItem = context.Scratch(ElementType.Float32, [m, n]);
        try
        {
            var aData = (Half*)AxisHelper.Data(a);
            var cData = (Half*)AxisHelper.Data(output);
            for (var item = 0; item < items; item++)
            {
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(aData + (long)item * m * k, m * k), aItem.Span<float>());
                float* bMatrix;
                if (sharedB is not null) bMatrix = (float*)AxisHelper.Data(sharedB);
                else
                {
                    WidenItem(b, item, k * n, bItem!.Span<float>());
                    bMatrix = (float*)AxisHelper.Data(bItem);
                }
                BatchMatMulKernel.Run(context.Pool, new BatchMatMulShape(1, m, k, n), (float*)AxisHelper.Data(aItem), bMatrix, (float*)AxisHelper.Data(cItem));
                System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(cItem.Span<float>(), new Span<Half>(cData + (long)item * m * n, m * n));
            }
        }
        finally
        {
            if (sharedB is not null && ownsSharedB) sharedB.Dispose();
        }
    }

    /// <summary>Batch item <paramref name="item"/> of a float32 or float16 tensor, as float32.</summary>
    private static void WidenItem(Tensor tensor, int item, int length, Span<float> destination)
    {
        if (tensor.ElementType == ElementType.Float16)
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)AxisHelper.Data(tensor) + (long)item * length, length), destination);
        else
            new ReadOnlySpan<float>((float*)AxisHelper.Data(tensor) + (long)item * length, length).CopyTo(destination);
    }

    /// <summary>
    /// Products with a weight of at most this many rows per thread multiply the widened weight directly (the shim's
    /// batched matmul picks its direct kernel there too): packing would cost more than it saves.
    /// </summary>
    private const int DirectRowsPerThread = 8;

    /// <summary>The product computed in <typeparamref name="T"/> (float or Half).</summary>
    private static void Compute<T>(OperatorContext context, MatMulPlan plan, Tensor a, Tensor b, Tensor output) where T : unmanaged
    {
        var type = ElementTypes.Of<T>();
        var scratch = new List<Tensor>();
        try
        {
            var at = Layout.ToType<T>(context, a, "A", out var ownsA);
            if (ownsA) scratch.Add(at);
            var result = output;
            if (output.ElementType != type)
                scratch.Add(result = context.Scratch(type, plan.OutputShape));
            var rows = checked((int)plan.Batch.Length * plan.M);
            var weightMatrix = context.IsWeight(1) && b.Shape.Length == 2;
            if (BySlices(context, plan, b))
            {
                MultiplyByWeightSlices<T>(context, plan, rows, at, b, context.WeightReader(1), result);
                if (result != output) Layout.FromFloat32(context, result, output);
                return;
            }
            if (context.KeepsPreparedOperators && weightMatrix && typeof(T) == typeof(float) && b.ElementType == ElementType.Float16 &&
                DirectFullyConnectedKernel.Supports(plan.K))
            {
                // Ram provider, float16 B: its transpose kept for later runs, multiplied as stored.
                var (k, n) = (plan.K, plan.N);
                var weights = context.Prepare(() => WeightColumns.GatherTransposed(context, b, null, [(0, n)]), out var ownsWeights);
                try
                {
                    DirectFullyConnectedKernel.Run(context.Pool, rows, k, at.Buffer<float>(), k, weights.Buffer<Half>(), n, default,
                        result.Buffer<float>(), n);
                }
                finally
                {
                    if (ownsWeights) weights.Dispose();
                }
            }
            else if (context.KeepsPreparedOperators && weightMatrix)
            {
                // Ram provider: B widened and packed once, kept for later runs (later runs neither widen nor pack it).
                var (k, n) = (plan.K, plan.N);
                var fullyConnected = context.Prepare(() =>
                {
                    var weights = Layout.ToType<T>(context, b, "B", out var ownsWeights);
                    try
                    {
                        return typeof(T) == typeof(Half)
                            ? FullyConnectedOperator.CreateFloat16(k, n, weights.Span<Half>(), transposeWeights: true)
                            : FullyConnectedOperator.CreateFloat32(k, n, weights.Span<float>(), transposeWeights: true);
                    }
                    finally
                    {
                        if (ownsWeights) weights.Dispose();
                    }
                }, out _);
                fullyConnected.Run(context.Pool, checked((int)plan.Batch.Length * plan.M), at.Buffer<T>(), result.Buffer<T>());
            }
            else
            {
                var bt = Layout.ToType<T>(context, b, "B", out var ownsB);
                if (ownsB) scratch.Add(bt);
                Multiply(context.Pool, plan, (T*)AxisHelper.Data(at), (T*)AxisHelper.Data(bt), (T*)AxisHelper.Data(result));
            }
            if (result != output) Layout.FromFloat32(context, result, output);
        }
        finally
        {
            foreach (var tensor in scratch) tensor.Dispose();
        }
    }

    /// <summary>
    /// A · the weight B [K, N] in slices of output columns: each slice of B gathered in its stored type (from its file with
    /// <paramref name="reader"/>), converted to <typeparamref name="T"/>, packed into a fully connected operator that writes its
    /// columns in place into <paramref name="result"/>, and freed before the next (<see cref="OperatorContext.WeightSliceBytes"/>).
    /// </summary>
    private static void MultiplyByWeightSlices<T>(OperatorContext context, MatMulPlan plan, int rows, Tensor a, Tensor b,
        Weights.WeightSliceReader? reader, Tensor result)
        where T : unmanaged
    {
        var (k, n) = (plan.K, plan.N);
        // A float16 B computed in float32 runs the direct kernel on its slices as stored (gathered and their transposed copy
        // within the budget); otherwise each thread's share of the budget holds a slice's converted copy.
        var direct = typeof(T) == typeof(float) && b.ElementType == ElementType.Float16 && DirectFullyConnectedKernel.Supports(k);
        var slice = ChannelBlocks.Size(n, direct
            ? context.WeightSliceBytes / (2L * k * sizeof(Half))
            : ChannelBlocks.SliceBytesPerThread(context) / ((long)k * sizeof(T)));
        var output = result.Buffer<T>();
        for (var n0 = 0; n0 < n; n0 += slice)
        {
            var columns = Math.Min(slice, n - n0);
            if (direct)
            {
                using var weights = WeightColumns.GatherTransposed(context, b, reader, [(n0, columns)]);
                DirectFullyConnectedKernel.Run(context.Pool, rows, k, a.Buffer<float>(), k, weights.Buffer<Half>(), columns, default,
                    NativeBuffer<float>.Wrap((float*)output.Pointer + n0, output.Length - n0), n);
                continue;
            }
            // The slice's columns of B, dense, in the stored type (B itself when it is the whole of it in memory).
            var gathered = b;
            if (columns != n || reader is not null)
            {
                gathered = context.Scratch(b.ElementType, [k, columns], b.Quantization);
                WeightColumns.Gather(b, reader, n0, columns, AxisHelper.Data(gathered), columns);
            }
            try
            {
                var weights = Layout.ToType<T>(context, gathered, "B", out var ownsWeights);
                try
                {
                    using var fullyConnected = typeof(T) == typeof(Half)
                        ? FullyConnectedOperator.CreateFloat16(k, columns, weights.Span<Half>(), transposeWeights: true, outputStride: n)
                        : FullyConnectedOperator.CreateFloat32(k, columns, weights.Span<float>(), transposeWeights: true, outputStride: n);
                    fullyConnected.Run(context.Pool, rows, a.Buffer<T>(), n0 == 0 ? output : NativeBuffer<T>.Wrap((T*)output.Pointer + n0, output.Length - n0));
                }
                finally
                {
                    if (ownsWeights) weights.Dispose();
                }
            }
            finally
            {
                if (gathered != b) gathered.Dispose();
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>B as stored (float16 in fp16 folders): a weight B is widened a slice at a time, or whole where it must be.</remarks>
    public bool TakesStoredWeight(int index) => index == 1;

    /// <inheritdoc />
    /// <remarks>A large B (SD 1.5's feed-forward output projection: 12.5 MiB in float16) is read a slice of columns at a time.</remarks>
    public bool ReadsWeightSlices(int index) => index == 1;

    /// <inheritdoc />
    public bool TakesQuantized(int index) => index is 0 or 1;

    /// <summary>A (quantized) · the uint8 weight B: all of A's rows through one uint8 fully connected operator.</summary>
    private static void MultiplyQUInt8(OperatorContext context, MatMulPlan plan, Tensor a, Tensor b, Quantization outputQuantization)
    {
        var output = context.Output(0, ElementType.UInt8, plan.OutputShape, outputQuantization);
        if (output.ElementCount == 0 || plan.K == 0) return;
        var (k, n) = (plan.K, plan.N);
        var inputQuantization = a.Quantization!.Value;
        FullyConnectedOperator Create() => FullyConnectedOperator.CreateQUInt8(k, n, inputQuantization, b.Quantization!.Value,
            b.Span<byte>(), default, outputQuantization, transposeWeights: true);
        var owned = true;
        var fullyConnected = context.KeepsPreparedOperators ? context.Prepare(Create, out owned) : Create();
        if (!owned && fullyConnected.DataType != KernelDataType.QUInt8)
        {
            fullyConnected = Create();
            owned = true;
        }
        try
        {
            fullyConnected.Run(context.Pool, checked((int)plan.Batch.Length * plan.M), a.Buffer<byte>(), output.Buffer<byte>());
        }
        finally
        {
            if (owned) fullyConnected.Dispose();
        }
    }

    /// <summary>
    /// C = A·B over the broadcast batch in as few kernel calls as the broadcast allows: one call when the
    /// batches match or one side has none, else one per output matrix.
    /// </summary>
    private static void Multiply<T>(XnnThreadPool pool, MatMulPlan plan, T* a, T* b, T* c) where T : unmanaged
    {
        var batch = (int)plan.Batch.Length;
        var (m, k, n) = (plan.M, plan.K, plan.N);
        if (plan.BBatchIsOne)
        {
            // B is one matrix: all of A's rows are one [batch·M, K] matrix.
            BatchMatMulKernel.Run(pool, new BatchMatMulShape(1, checked(batch * m), k, n), a, b, c);
            return;
        }
        if (plan.ABatchIsOne || plan.BatchesMatch)
        {
            BatchMatMulKernel.Run(pool, new BatchMatMulShape(batch, m, k, n, BroadcastA: plan.ABatchIsOne), a, b, c);
            return;
        }
        var index = new int[plan.Batch.Shape.Length];
        for (var item = 0; item < batch; item++)
        {
            long aOffset = 0, bOffset = 0;
            for (var d = 0; d < index.Length; d++)
            {
                aOffset += index[d] * plan.ABatchStrides[d];
                bOffset += index[d] * plan.BBatchStrides[d];
            }
            BatchMatMulKernel.Run(pool, new BatchMatMulShape(1, m, k, n),
                a + aOffset * m * k, b + bOffset * k * n, c + (long)item * m * n);
            for (var d = index.Length - 1; d >= 0 && ++index[d] == plan.Batch.Shape[d]; d--) index[d] = 0;
        }
    }

    /// <summary>Integer matmul: a plain loop, parallel over the output's rows (integer MatMul is rare and small).</summary>
    private static void RunInteger<T>(OperatorContext context, MatMulPlan plan, Tensor a, Tensor b, Tensor output)
        where T : unmanaged, INumber<T>
    {
        var (m, k, n) = (plan.M, plan.K, plan.N);
        var pa = (nint)AxisHelper.Data(a);
        var pb = (nint)AxisHelper.Data(b);
        var pc = (nint)AxisHelper.Data(output);
        var rows = plan.Batch.Length * m;
        void Row(long row)
        {
            var item = row / m;
            var r = row % m;
            long aOffset = 0, bOffset = 0, rest = item;
            for (var d = plan.Batch.Shape.Length - 1; d >= 0; d--)
            {
                var i = rest % plan.Batch.Shape[d];
                rest /= plan.Batch.Shape[d];
                aOffset += i * plan.ABatchStrides[d];
                bOffset += i * plan.BBatchStrides[d];
            }
            var aRow = (T*)pa + aOffset * m * k + r * k;
            var bMatrix = (T*)pb + bOffset * k * n;
            var cRow = new Span<T>((T*)pc + row * n, n);
            cRow.Clear();
            for (var p = 0; p < k; p++)
            {
                var factor = aRow[p];
                var bRow = bMatrix + (long)p * n;
                for (var j = 0; j < n; j++) cRow[j] += factor * bRow[j];
            }
        }
        if (rows * k * n < 1 << 15 || context.Parallel.MaxDegreeOfParallelism == 1)
            for (long row = 0; row < rows; row++) Row(row);
        else
            Parallel.For(0L, rows, context.Parallel, Row);
    }

    /// <summary>The broadcast batch: its shape and element count.</summary>
    internal readonly record struct BatchShape(int[] Shape, long Length);

    /// <summary>
    /// What a MatMul computes: the output, the matrix sizes, the broadcast batch and, per batch dimension,
    /// the matrix stride of A and B in units of one matrix (0 where that side broadcasts).
    /// </summary>
    internal sealed record MatMulPlan(ElementType OutputType, int[] OutputShape, int M, int K, int N, BatchShape Batch,
        long[] ABatchStrides, long[] BBatchStrides, bool ABatchIsOne, bool BBatchIsOne, bool BatchesMatch);

    /// <summary>Checks the inputs and infers the output type and shape.</summary>
    internal static MatMulPlan InferShape(OperatorContext context, Tensor a, Tensor b)
    {
        var outputType = OutputType(context, a, b);
        if (a.Shape.Length == 0 || b.Shape.Length == 0)
            throw context.Error($"MatMul inputs must have at least one dimension, got A {AxisHelper.Format(a.Shape)} and B {AxisHelper.Format(b.Shape)}");
        int[] aShape = a.Shape.Length == 1 ? [1, a.Shape[0]] : a.Shape;
        int[] bShape = b.Shape.Length == 1 ? [b.Shape[0], 1] : b.Shape;
        int m = aShape[^2], k = aShape[^1], n = bShape[^1];
        if (bShape[^2] != k)
            throw context.Error($"A {AxisHelper.Format(a.Shape)} has {k} columns but B {AxisHelper.Format(b.Shape)} has {bShape[^2]} rows");

        var aBatch = aShape[..^2];
        var bBatch = bShape[..^2];
        var rank = Math.Max(aBatch.Length, bBatch.Length);
        var batch = new int[rank];
        var aDims = new int[rank];
        var bDims = new int[rank];
        for (var d = 0; d < rank; d++)
        {
            var i = d - (rank - aBatch.Length);
            var j = d - (rank - bBatch.Length);
            aDims[d] = i >= 0 ? aBatch[i] : 1;
            bDims[d] = j >= 0 ? bBatch[j] : 1;
            if (aDims[d] != bDims[d] && aDims[d] != 1 && bDims[d] != 1)
                throw context.Error($"the batch dimensions of A {AxisHelper.Format(a.Shape)} and B {AxisHelper.Format(b.Shape)} do not broadcast");
            batch[d] = aDims[d] == 1 ? bDims[d] : aDims[d];
        }
        var aStrides = BatchStrides(aDims);
        var bStrides = BatchStrides(bDims);

        var outputShape = new List<int>(batch);
        if (a.Shape.Length > 1) outputShape.Add(m);
        if (b.Shape.Length > 1) outputShape.Add(n);
        var length = AxisHelper.Product(batch, 0, rank);
        return new MatMulPlan(outputType, [.. outputShape], m, k, n, new BatchShape(batch, length), aStrides, bStrides,
            ABatchIsOne: aDims.All(d => d == 1), BBatchIsOne: bDims.All(d => d == 1), BatchesMatch: aDims.SequenceEqual(bDims));
    }

    /// <summary>Strides in matrices of a broadcast batch: 0 along dimensions of size 1.</summary>
    private static long[] BatchStrides(int[] dims)
    {
        var strides = AxisHelper.Strides(dims);
        for (var d = 0; d < dims.Length; d++)
            if (dims[d] == 1) strides[d] = 0;
        return strides;
    }

    /// <summary>
    /// float16 when either input is float16, else float32; or the integer type. A weight B reaches the operator as stored
    /// (see <see cref="TakesStoredWeight"/>), in whatever precision the model folder keeps it: then A alone decides.
    /// </summary>
    private static ElementType OutputType(OperatorContext context, Tensor a, Tensor b)
    {
        static bool IsFloat(Tensor t) => t.ElementType is ElementType.Float32 or ElementType.Float16 ||
                                        t.ElementType == ElementType.UInt8 && t.Quantization is not null;
        if (IsFloat(a) && IsFloat(b))
            return a.ElementType == ElementType.Float16 || b.ElementType == ElementType.Float16 && !context.IsWeight(1)
                ? ElementType.Float16
                : ElementType.Float32;
        if (a.ElementType == b.ElementType && a.ElementType is ElementType.Int64 or ElementType.Int32)
            return a.ElementType;
        throw context.Error($"A and B must both be float32/float16 or both int64 or int32, got {a.ElementType} and {b.ElementType}");
    }
}
