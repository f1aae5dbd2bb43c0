namespace OnnxStream.Operators;

/// <summary>Maps ONNX operator types to their implementations.</summary>
public sealed class OperatorRegistry
{
    private readonly Dictionary<string, IOperator> _operators = new(StringComparer.Ordinal);

    /// <summary>The registry with every built-in operator.</summary>
    public static OperatorRegistry Default { get; } = CreateDefault();

    /// <summary>Adds or replaces the implementation of <paramref name="opType"/>.</summary>
    public OperatorRegistry Register(string opType, IOperator implementation)
    {
        _operators[opType] = implementation;
        return this;
    }

    /// <summary>The implementation of <paramref name="opType"/>, if any.</summary>
    public bool TryGet(string opType, out IOperator implementation) => _operators.TryGetValue(opType, out implementation!);

    /// <summary>Operator types with an implementation.</summary>
    public IEnumerable<string> OpTypes => _operators.Keys;

    private static OperatorRegistry CreateDefault()
    {
        var registry = new OperatorRegistry();
        // Every IOperator in this assembly registers under its class name minus "Operator".
        foreach (var type in typeof(IOperator).Assembly.GetTypes())
            if (type is { IsClass: true, IsAbstract: false } && typeof(IOperator).IsAssignableFrom(type) && type.Name.EndsWith("Operator"))
                registry.Register(type.Name[..^"Operator".Length], (IOperator)Activator.CreateInstance(type)!);
        return registry;
    }
}
