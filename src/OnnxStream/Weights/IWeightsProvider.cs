using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Weights;

/// <summary>
/// Supplies each weight just before the operation that needs it. It is told at start the order in
/// which weights will be asked for (one entry per request, repeats included), so it can read ahead.
/// </summary>
public interface IWeightsProvider : IDisposable
{
    /// <summary>Called once before any run with the request order and the allocator to use.</summary>
    void Initialize(IReadOnlyList<TensorDescriptor> requestOrder, NativeAllocator allocator);

    /// <summary>The weight's tensor; valid until <see cref="Release"/>.</summary>
    Tensor Acquire(TensorDescriptor weight, CancellationToken cancellationToken);

    /// <summary>The operation is done with <paramref name="tensor"/>.</summary>
    void Release(TensorDescriptor weight, Tensor tensor);

    /// <summary>Called when a run starts (a provider that reads ahead starts reading).</summary>
    void BeginRun();

    /// <summary>Called after each run, finished or not: a provider that reads ahead drops what it read and starts over.</summary>
    void EndRun();
}
