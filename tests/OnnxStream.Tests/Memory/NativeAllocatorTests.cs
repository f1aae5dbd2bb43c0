using OnnxStream.Memory;

namespace OnnxStream.Tests.Allocating;

/// <summary>
/// Small blocks come from the C heap, large ones (256 KiB and more) are mapped and given back to the system when freed,
/// but for a bounded cache of freed blocks reused for the same size: every block is zeroed and accounted either way.
/// </summary>
[NonParallelizable]
internal sealed class NativeAllocatorTests
{
    [TestCase(100)]
    [TestCase(1 << 20)]
    [TestCase(3 << 20)]
    public void Blocks_are_zeroed_and_accounted_also_when_reused(int length)
    {
        var allocator = new NativeAllocator();
        for (var round = 0; round < 3; round++)
        {
            // The same size again: a large one now comes from the cache, with the old contents cleared.
            using var buffer = NativeBuffer<byte>.Allocate(length, allocator);
            Assert.That(buffer.Span.IndexOfAnyExcept((byte)0), Is.EqualTo(-1), $"round {round}: not zeroed");
            Assert.That((allocator.CurrentBytes, allocator.LiveBlocks), Is.EqualTo(((long)length, 1L)));
            buffer.Span.Fill(0xA5);
        }
        Assert.That((allocator.CurrentBytes, allocator.LiveBlocks, allocator.PeakBytes), Is.EqualTo((0L, 0L, (long)length)));
    }

    [Test]
    public void The_block_cache_limit_can_be_changed_and_restored()
    {
        var limit = NativeAllocator.BlockCacheBytes;
        Assert.That(limit, Is.EqualTo(8L << 20), "the default");
        try
        {
            NativeAllocator.BlockCacheBytes = 0; // every freed large block goes back to the system at once
            var allocator = new NativeAllocator();
            using (var buffer = NativeBuffer<float>.Allocate(1 << 20, allocator)) buffer.Span.Fill(1);
            using var again = NativeBuffer<float>.Allocate(1 << 20, allocator);
            Assert.That(again.Span.IndexOfAnyExcept(0f), Is.EqualTo(-1));
            Assert.Throws<ArgumentOutOfRangeException>(() => NativeAllocator.BlockCacheBytes = -1);
        }
        finally
        {
            NativeAllocator.BlockCacheBytes = limit;
        }
    }
}
