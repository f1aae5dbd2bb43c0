using OnnxStream.Graph;
using OnnxStream.Kernels;

namespace OnnxStream.Runtime;

/// <summary>
/// The native operators (XNNPACK's packed weights, one or a set of them) that a session keeps between runs, one
/// entry per node: with the Ram weights provider, later runs skip weight packing as they skip reading. Only
/// operators built from a node's weights are kept, never from its activations.
/// </summary>
internal sealed class PreparedOperatorCache : IDisposable
{
    private readonly Dictionary<GraphNode, IDisposable> _operators = [];
    private readonly Lock _gate = new();

    /// <summary>Operators kept now.</summary>
    public int Count
    {
        get
        {
            lock (_gate) return _operators.Count;
        }
    }

    /// <summary>The operator kept for <paramref name="node"/>, created by <paramref name="create"/> the first time.</summary>
    public T GetOrCreate<T>(GraphNode node, Func<T> create) where T : class, IDisposable
    {
        lock (_gate)
        {
            if (_operators.TryGetValue(node, out var kept))
                return kept as T ?? throw new InvalidOperationException($"{node}: a {kept.GetType().Name} is kept, not a {typeof(T).Name}");
        }
        var created = create();
        lock (_gate)
        {
            if (_operators.TryAdd(node, created)) return created;
        }
        created.Dispose();
        return GetOrCreate(node, create);
    }

    /// <summary>Frees every kept operator.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var op in _operators.Values) op.Dispose();
            _operators.Clear();
        }
    }
}
