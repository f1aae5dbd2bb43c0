using System.Runtime.InteropServices;
using OnnxStream.Interop;

namespace OnnxStream.Memory;

/// <summary>
/// The one place tensor memory comes from: aligned native blocks, zeroed, over-allocated by the bytes XNNPACK
/// may read past an input's end, and accounted so a run can report its current and peak bytes and a
/// test can assert that everything allocated was freed. Blocks of 256 KiB and more are mapped from the system
/// and given back when freed (but for a small cache of freed blocks reused for the same size, see
/// <see cref="BlockCacheBytes"/>), so that freed weights and activations leave the resident set.
/// </summary>
public sealed unsafe class NativeAllocator
{
    /// <summary>Alignment of every block: a cache line, and enough for any SIMD load.</summary>
    public const int Alignment = 64;

    /// <summary>Bytes allocated past each block's end because XNNPACK may read them.</summary>
    public static int OverAllocationBytes => (int)OsnLimits.ExtraBytes;

    private long _currentBytes;
    private long _peakBytes;
    private long _intervalPeakBytes;
    private long _liveBlocks;

    /// <summary>The allocator used when none is given.</summary>
    public static NativeAllocator Shared { get; } = new();

    /// <summary>Bytes held now (as requested, without the over-allocation).</summary>
    public long CurrentBytes => Interlocked.Read(ref _currentBytes);

    /// <summary>The most bytes held at once since creation or <see cref="ResetPeak"/>.</summary>
    public long PeakBytes => Interlocked.Read(ref _peakBytes);

    /// <summary>Blocks allocated and not yet freed.</summary>
    public long LiveBlocks => Interlocked.Read(ref _liveBlocks);

    /// <summary>
    /// The most bytes one tensor from this allocator may take (default <see cref="TensorLimit.DefaultMaxBytes"/>):
    /// <see cref="Tensors.Tensor.Allocate"/> refuses a larger one with a <see cref="TensorTooLargeException"/> before
    /// allocating anything.
    /// </summary>
    public long MaxTensorBytes
    {
        get => _maxTensorBytes;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _maxTensorBytes = value;
        }
    }

    private long _maxTensorBytes = TensorLimit.DefaultMaxBytes;

    /// <summary>Restarts peak tracking from the current byte count.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref _peakBytes, CurrentBytes);

    /// <summary>
    /// The most bytes held at once since the last call (or creation), restarted from the current byte count: the peak
    /// of one interval, such as one operation, without disturbing <see cref="PeakBytes"/>.
    /// </summary>
    public long TakeIntervalPeak() => Interlocked.Exchange(ref _intervalPeakBytes, CurrentBytes);

    /// <summary>
    /// Bytes of freed large blocks the process keeps to serve later requests of the same size without page faults
    /// (default 8 MiB; shared with XNNPACK's packed weights). They count in the resident set, not in
    /// <see cref="CurrentBytes"/>.
    /// </summary>
    public static long BlockCacheBytes
    {
        get => Interlocked.Read(ref _blockCacheBytes);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            NativeStatus.Check(NativeMethods.osn_block_cache_set_limit((nuint)value));
            Interlocked.Exchange(ref _blockCacheBytes, value);
        }
    }

    private static long _blockCacheBytes = (long)OsnLimits.DefaultBlockCacheBytes;

    /// <summary>Allocates <paramref name="bytes"/>, zeroed (plus the over-allocation, zeroed).</summary>
    /// <exception cref="OutOfMemoryException">The system has no block of that size.</exception>
    internal void* Allocate(nuint bytes)
    {
        var total = bytes + (nuint)OverAllocationBytes;
        void* pointer;
        if (total >= (nuint)OsnLimits.LargeBlockBytes)
        {
            int zeroed;
            if (NativeMethods.osn_block_allocate(total, &pointer, &zeroed) != 0)
                throw new OutOfMemoryException($"Could not allocate {bytes} bytes of native memory.");
            if (zeroed == 0) NativeMemory.Clear(pointer, total);
        }
        else
        {
            pointer = NativeMemory.AlignedAlloc(total, Alignment);
            if (pointer == null)
                throw new OutOfMemoryException($"Could not allocate {bytes} bytes of native memory.");
            NativeMemory.Clear(pointer, total);
        }
        var now = Interlocked.Add(ref _currentBytes, (long)bytes);
        Interlocked.Increment(ref _liveBlocks);
        RaiseTo(ref _peakBytes, now);
        RaiseTo(ref _intervalPeakBytes, now);
        return pointer;
    }

    private static void RaiseTo(ref long peak, long now)
    {
        long seen;
        while (now > (seen = Interlocked.Read(ref peak)) && Interlocked.CompareExchange(ref peak, now, seen) != seen)
        {
        }
    }

    /// <summary>Frees a block from <see cref="Allocate"/> of <paramref name="bytes"/>.</summary>
    internal void Free(void* pointer, nuint bytes)
    {
        var total = bytes + (nuint)OverAllocationBytes;
        if (total >= (nuint)OsnLimits.LargeBlockBytes) NativeMethods.osn_block_free(pointer, total);
        else NativeMemory.AlignedFree(pointer);
        Interlocked.Add(ref _currentBytes, -(long)bytes);
        Interlocked.Decrement(ref _liveBlocks);
    }
}
