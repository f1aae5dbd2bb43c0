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
        // Listed, not found by reflection, so that trimming and Native AOT keep them all.
        IOperator[] builtIn =
        [
            new AddOperator(),
            new AndOperator(),
            new ArgMaxOperator(),
            new AveragePoolOperator(),
            new CastOperator(),
            new ClipOperator(),
            new ConcatOperator(),
            new ConstantOfShapeOperator(),
            new ConvOperator(),
            new ConvTransposeOperator(),
            new CosOperator(),
            new CumSumOperator(),
            new DepthToSpaceOperator(),
            new DivOperator(),
            new EinsumOperator(),
            new EqualOperator(),
            new ErfOperator(),
            new ExpOperator(),
            new ExpandOperator(),
            new FlattenOperator(),
            new FusedAttentionOperator(),
            new FusedGegluOperator(),
            new FusedGroupNormOperator(),
            new GatherOperator(),
            new GeluOperator(),
            new GemmOperator(),
            new GlobalAveragePoolOperator(),
            new GreaterOperator(),
            new GroupNormalizationOperator(),
            new HardSigmoidOperator(),
            new HardSwishOperator(),
            new IdentityOperator(),
            new InstanceNormalizationOperator(),
            new LayerNormalizationOperator(),
            new LeakyReluOperator(),
            new LessOperator(),
            new LogOperator(),
            new MatMulOperator(),
            new MaxOperator(),
            new MaxPoolOperator(),
            new MinOperator(),
            new ModOperator(),
            new MulOperator(),
            new NegOperator(),
            new NonZeroOperator(),
            new NotOperator(),
            new OrOperator(),
            new PadOperator(),
            new PowOperator(),
            new RangeOperator(),
            new ReduceMaxOperator(),
            new ReduceMeanOperator(),
            new ReduceSumOperator(),
            new ReluOperator(),
            new ReshapeOperator(),
            new ResizeOperator(),
            new ScatterNDOperator(),
            new ShapeOperator(),
            new SigmoidOperator(),
            new SinOperator(),
            new SliceOperator(),
            new SlicedAttentionOperator(),
            new SoftmaxOperator(),
            new SoftplusOperator(),
            new SplitOperator(),
            new SqrtOperator(),
            new SqueezeOperator(),
            new SubOperator(),
            new SumOperator(),
            new TanhOperator(),
            new TileOperator(),
            new TopKOperator(),
            new TransposeOperator(),
            new TriluOperator(),
            new UnsqueezeOperator(),
            new WhereOperator(),
        ];
        // Each registers under its class name minus "Operator" (OperatorRegistryTests checks that none is missing).
        var registry = new OperatorRegistry();
        foreach (var implementation in builtIn)
            registry.Register(implementation.GetType().Name[..^"Operator".Length], implementation);
        return registry;
    }
}
