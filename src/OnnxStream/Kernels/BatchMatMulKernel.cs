using OnnxStream.Interop;
using OnnxStream.Memory;

namespace OnnxStream.Kernels;

/// <summary>How <see cref="BatchMatMulKernel"/> computes.</summary>
public enum MatMulAlgorithm
{
    /// <summary>Chosen by shape: <see cref="Direct"/> for a few rows per thread, else <see cref="PackedGemm"/>.</summary>
    Auto = OsnMatmulAlgorithm.Auto,
    /// <summary>Packs each B into an XNNPACK fully-connected operator and runs A through it.</summary>
    PackedGemm = OsnMatmulAlgorithm.PackedGemm,
    /// <summary>The shim's own kernel without packing (float32 only).</summary>
    Direct = OsnMatmulAlgorithm.Direct,
}

/// <summary>Shape of a batched matmul: C[i] = A[i] · B[i], A[i] [M, K], B[i] [K, N] (or [N, K] transposed), C[i] [M, N].</summary>
/// <param name="Batch">Number of matrix products.</param>
/// <param name="M">Rows of A and C.</param>
/// <param name="K">Columns of A, rows of B.</param>
/// <param name="N">Columns of B and C.</param>
/// <param name="TransposeB">B items are stored [N, K] (as K in Q·Kᵀ).</param>
/// <param name="BroadcastA">One A is used for every item.</param>
/// <param name="BroadcastB">One B is used for every item.</param>
public readonly record struct BatchMatMulShape(int Batch, int M, int K, int N, bool TransposeB = false,
    bool BroadcastA = false, bool BroadcastB = false);

/// <summary>Matrix products of two activations (attention's Q·Kᵀ and P·V), float32 or float16.</summary>
public static unsafe class BatchMatMulKernel
{
    /// <summary>Computes every C[i] of <paramref name="shape"/>.</summary>
    public static void Run<T>(XnnThreadPool pool, BatchMatMulShape shape, NativeBuffer<T> a, NativeBuffer<T> b, NativeBuffer<T> c,
        MatMulAlgorithm algorithm = MatMulAlgorithm.Auto) where T : unmanaged
    {
        if (shape.Batch < 1 || shape.M < 1 || shape.K < 1 || shape.N < 1)
            throw new ArgumentException($"Batch matmul sizes must be positive: {shape}.", nameof(shape));
        long aItem = (long)shape.M * shape.K, bItem = (long)shape.K * shape.N, cItem = (long)shape.M * shape.N;
        KernelDataTypes.CheckLength(nameof(a), a, shape.BroadcastA ? aItem : aItem * shape.Batch);
        KernelDataTypes.CheckLength(nameof(b), b, shape.BroadcastB ? bItem : bItem * shape.Batch);
        KernelDataTypes.CheckLength(nameof(c), c, cItem * shape.Batch);
        Run(pool, shape, a.Pointer, b.Pointer, c.Pointer, algorithm);
    }

    /// <summary>
    /// <see cref="Run{T}(XnnThreadPool, BatchMatMulShape, NativeBuffer{T}, NativeBuffer{T}, NativeBuffer{T}, MatMulAlgorithm)"/>
    /// on raw pointers into larger tensors (a broadcast batch item at a time); the caller guarantees the extents.
    /// </summary>
    internal static void Run<T>(XnnThreadPool pool, BatchMatMulShape shape, T* a, T* b, T* c,
        MatMulAlgorithm algorithm = MatMulAlgorithm.Auto) where T : unmanaged
    {
        long aItem = (long)shape.M * shape.K, bItem = (long)shape.K * shape.N, cItem = (long)shape.M * shape.N;
        Run(pool, shape, a, shape.BroadcastA ? 0 : aItem, b, shape.BroadcastB ? 0 : bItem, c, cItem, algorithm);
    }

    /// <summary>
    /// The same with explicit batch strides in elements (item i of A starts at a + i·aStride; 0 repeats one
    /// matrix): row blocks of larger matrices. <see cref="BatchMatMulShape.BroadcastA"/> and
    /// <see cref="BatchMatMulShape.BroadcastB"/> are ignored; the caller guarantees the extents.
    /// </summary>
    internal static void Run<T>(XnnThreadPool pool, BatchMatMulShape shape, T* a, long aStride, T* b, long bStride, T* c, long cStride,
        MatMulAlgorithm algorithm = MatMulAlgorithm.Auto) where T : unmanaged
    {
        var flags = shape.TransposeB ? (uint)OsnFlag.TransposeB : 0;
        NativeStatus.Check(KernelDataTypes.Of<T>() switch
        {
            KernelDataType.Float32 => NativeMethods.osn_batch_matmul_f32((nuint)shape.Batch, (nuint)shape.M, (nuint)shape.K,
                (nuint)shape.N, (float*)a, (nuint)aStride, (float*)b, (nuint)bStride, (float*)c, (nuint)cStride, flags,
                (OsnMatmulAlgorithm)algorithm, pool.Handle),
            KernelDataType.Float16 => NativeMethods.osn_batch_matmul_f16((nuint)shape.Batch, (nuint)shape.M, (nuint)shape.K,
                (nuint)shape.N, (ushort*)a, (nuint)aStride, (ushort*)b, (nuint)bStride, (ushort*)c, (nuint)cStride, flags,
                (OsnMatmulAlgorithm)algorithm, pool.Handle),
            _ => throw new ArgumentException("Batch matmul takes float or Half buffers."),
        });
    }
}
