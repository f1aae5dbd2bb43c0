using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Weights;

/// <summary>Reads each weight once and keeps it until disposed: later runs read nothing.</summary>
public sealed class RamWeightsProvider : IWeightsProvider
{
    private readonly Dictionary<string, Tensor> _cache = [];
    private NativeAllocator _allocator = NativeAllocator.Shared;

    /// <inheritdoc />
    public void Initialize(IReadOnlyList<TensorDescriptor> requestOrder, NativeAllocator allocator) => _allocator = allocator;

    /// <inheritdoc />
    public Tensor Acquire(TensorDescriptor weight, CancellationToken cancellationToken)
    {
        if (!_cache.TryGetValue(weight.Name, out var tensor))
            _cache[weight.Name] = tensor = WeightFileReader.Read(weight, _allocator);
        return tensor;
    }

    /// <inheritdoc />
    public void Release(TensorDescriptor weight, Tensor tensor) { }

    /// <inheritdoc />
    public void BeginRun() { }

    /// <inheritdoc />
    public void EndRun() { }

    /// <summary>Frees every kept weight.</summary>
    public void Dispose()
    {
        foreach (var tensor in _cache.Values) tensor.Dispose();
        _cache.Clear();
    }
}
