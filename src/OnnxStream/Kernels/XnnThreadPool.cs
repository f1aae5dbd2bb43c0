using OnnxStream.Interop;

namespace OnnxStream.Kernels;

/// <summary>The worker threads every native kernel runs on (a pthreadpool). Dispose to stop them.</summary>
public sealed unsafe class XnnThreadPool : IDisposable
{
    private XnnThreadPool(OsnThreadpoolHandle handle, int threadCount)
    {
        Handle = handle;
        ThreadCount = threadCount;
    }

    /// <summary>Starts a pool of <paramref name="threads"/> threads (1 runs kernels on the caller's thread).</summary>
    public static XnnThreadPool Create(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        NativeStatus.Check(NativeMethods.osn_threadpool_create((uint)threads, out var handle));
        uint count;
        NativeStatus.Check(NativeMethods.osn_threadpool_thread_count(handle, &count));
        return new XnnThreadPool(handle, (int)count);
    }

    /// <summary>Threads in the pool.</summary>
    public int ThreadCount { get; }

    internal OsnThreadpoolHandle Handle { get; }

    /// <inheritdoc />
    public void Dispose() => Handle.Dispose();
}
