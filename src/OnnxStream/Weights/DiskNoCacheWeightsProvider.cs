using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Weights;

/// <summary>Reads each weight from disk when asked and frees it when released: the least memory, the most I/O.</summary>
public sealed class DiskNoCacheWeightsProvider : IWeightsProvider
{
    private NativeAllocator _allocator = NativeAllocator.Shared;

    /// <inheritdoc />
    public void Initialize(IReadOnlyList<TensorDescriptor> requestOrder, NativeAllocator allocator) => _allocator = allocator;

    /// <inheritdoc />
    public Tensor Acquire(TensorDescriptor weight, CancellationToken cancellationToken) => WeightFileReader.Read(weight, _allocator);

    /// <inheritdoc />
    public void Release(TensorDescriptor weight, Tensor tensor) => tensor.Dispose();

    /// <inheritdoc />
    public void BeginRun() { }

    /// <inheritdoc />
    public void EndRun() { }

    /// <inheritdoc />
    public void Dispose() { }
}
