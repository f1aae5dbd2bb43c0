using System.Numerics;
using System.Runtime.InteropServices;
using OnnxStream.Tensors;

namespace OnnxStream.Kernels;

/// <summary>
/// Vectorized searches for NaN and infinities in float32 and float16 data, on the bit patterns (exponent all ones):
/// one read of the data, in parallel blocks for large tensors.
/// </summary>
internal static class NonFiniteScan
{
    /// <summary>Elements per parallel block.</summary>
    private const int BlockElements = 1 << 20;

    /// <summary>The index of the first NaN or infinity of a float32 or float16 tensor; -1 when there is none or it holds another type.</summary>
    public static int FirstNonFinite(Tensor tensor, int threads = 1) => tensor.ElementType switch
    {
        ElementType.Float32 => First(MemoryMarshal.Cast<float, int>(tensor.Span<float>()), 0x7FFF_FFFF, 0x7F7F_FFFF, threads),
        ElementType.Float16 => First(MemoryMarshal.Cast<Half, short>(tensor.Span<Half>()), (short)0x7FFF, (short)0x7BFF, threads),
        _ => -1,
    };

    /// <summary>Whether <paramref name="values"/> holds a NaN.</summary>
    public static bool HasNaN(ReadOnlySpan<float> values, int threads = 1) =>
        First(MemoryMarshal.Cast<float, int>(values), 0x7FFF_FFFF, 0x7F80_0000, threads) >= 0;

    /// <summary>Replaces every −∞ of <paramref name="values"/> by NaN.</summary>
    public static void NegativeInfinityToNaN(Span<float> values)
    {
        var bits = MemoryMarshal.Cast<float, uint>(values);
        const uint negativeInfinity = 0xFF80_0000u;
        for (var i = bits.IndexOf(negativeInfinity); i >= 0; i = bits.IndexOf(negativeInfinity))
            values[i] = float.NaN;
    }

    /// <summary>The first index whose bits, masked with <paramref name="abs"/> (the sign cleared), are above <paramref name="threshold"/>.</summary>
    private static int First<T>(ReadOnlySpan<T> bits, T abs, T threshold, int threads) where T : unmanaged, IBinaryInteger<T>
    {
        if (threads <= 1 || bits.Length < 2 * BlockElements) return First(bits, abs, threshold);
        var blocks = (bits.Length + BlockElements - 1) / BlockElements;
        var found = int.MaxValue;
        unsafe
        {
            fixed (T* start = bits)
            {
                var pointer = (nint)start;
                var length = bits.Length;
                Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = threads }, block =>
                {
                    var offset = block * BlockElements;
                    var span = new ReadOnlySpan<T>((T*)pointer + offset, Math.Min(BlockElements, length - offset));
                    if (First(span, abs, threshold) is var index and >= 0) InterlockedMin(ref found, offset + index);
                });
            }
        }
        return found == int.MaxValue ? -1 : found;
    }

    /// <remarks>The sign cleared, the bits compare as positive signed integers (one instruction); four vectors a test.</remarks>
    private static int First<T>(ReadOnlySpan<T> bits, T abs, T threshold) where T : unmanaged, IBinaryInteger<T>
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var vectorAbs = new Vector<T>(abs);
            var vectorThreshold = new Vector<T>(threshold);
            var count = Vector<T>.Count;
            ref var start = ref MemoryMarshal.GetReference(bits);
            for (; i <= bits.Length - 4 * count; i += 4 * count)
            {
                var any = Vector.GreaterThan(Vector.LoadUnsafe(ref start, (nuint)i) & vectorAbs, vectorThreshold) |
                          Vector.GreaterThan(Vector.LoadUnsafe(ref start, (nuint)(i + count)) & vectorAbs, vectorThreshold) |
                          Vector.GreaterThan(Vector.LoadUnsafe(ref start, (nuint)(i + 2 * count)) & vectorAbs, vectorThreshold) |
                          Vector.GreaterThan(Vector.LoadUnsafe(ref start, (nuint)(i + 3 * count)) & vectorAbs, vectorThreshold);
                if (any != Vector<T>.Zero) break;
            }
        }
        for (; i < bits.Length; i++)
            if ((bits[i] & abs) > threshold) return i;
        return -1;
    }

    private static void InterlockedMin(ref int target, int value)
    {
        for (var current = Volatile.Read(ref target); value < current; current = Volatile.Read(ref target))
            if (Interlocked.CompareExchange(ref target, value, current) == current) return;
    }
}
