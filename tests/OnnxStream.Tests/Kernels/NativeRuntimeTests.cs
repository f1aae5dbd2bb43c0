using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

internal sealed class NativeRuntimeTests : KernelTestBase
{
    [Test]
    public void The_native_library_reports_the_pinned_xnnpack_commit() =>
        Assert.That(NativeRuntime.XnnpackCommit, Is.EqualTo("ae108ef"));

    [Test]
    public void Float16_support_matches_what_creating_an_f16_operator_does()
    {
        // When f16 is reported missing, creating an f16 operator must say so rather than crash.
        if (NativeRuntime.SupportsFloat16)
        {
            using var op = FullyConnectedOperator.CreateFloat16(2, 2, new Half[4]);
            Assert.That(op.DataType, Is.EqualTo(KernelDataType.Float16));
        }
        else
        {
            var error = Assert.Throws<NativeKernelException>(() => FullyConnectedOperator.CreateFloat16(2, 2, new Half[4]))!;
            Assert.That(error.Status, Is.EqualTo(NativeKernelStatus.UnsupportedHardware));
        }
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void Thread_pools_have_the_requested_size(int threads)
    {
        using var pool = XnnThreadPool.Create(threads);
        Assert.That(pool.ThreadCount, Is.EqualTo(threads));
    }

    [Test]
    public void Packed_weights_are_accounted_and_released()
    {
        var (before, _) = NativeRuntime.XnnpackMemory;
        NativeRuntime.ResetXnnpackPeak();
        var op = FullyConnectedOperator.CreateFloat32(512, 256, new float[512 * 256]);
        var (during, peak) = NativeRuntime.XnnpackMemory;
        op.Dispose();
        var (after, _) = NativeRuntime.XnnpackMemory;
        Assert.That(during - before, Is.GreaterThanOrEqualTo(512L * 256 * sizeof(float)), "packed weights are counted");
        Assert.That(peak, Is.GreaterThanOrEqualTo(during));
        Assert.That(after, Is.EqualTo(before), "destroying the operator frees its packed weights");
    }

    [Test]
    public void The_allocator_tracks_current_and_peak_bytes_and_over_allocates()
    {
        var allocator = new NativeAllocator();
        var a = NativeBuffer<float>.Allocate(1000, allocator);
        var b = NativeBuffer<byte>.Allocate(10, allocator);
        Assert.That(allocator.CurrentBytes, Is.EqualTo(4010));
        a.Dispose();
        Assert.That(allocator.CurrentBytes, Is.EqualTo(10));
        Assert.That(allocator.PeakBytes, Is.EqualTo(4010));
        allocator.ResetPeak();
        Assert.That(allocator.PeakBytes, Is.EqualTo(10));
        b.Dispose();
        Assert.That(allocator.LiveBlocks, Is.Zero);
        Assert.That(NativeAllocator.OverAllocationBytes, Is.EqualTo(16));
        Assert.Throws<ObjectDisposedException>(() => _ = b.Span);
    }
}
