using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// An operand of a <see cref="StoredWeightHarness"/> run: its values (ONNX Runtime gets them as float32), the type the
/// session holds it in, and whether it is a weight (reaching the operator as stored when it takes stored weights).
/// </summary>
internal sealed record StoredOperand(TestInput Values, ElementType StoredAs, bool Weight, Quantization? Quantization = null)
{
    public static StoredOperand Activation(TestInput values) => new(values, ElementType.Float32, false);

    /// <summary>A float16 activation: the values rounded to float16.</summary>
    public static StoredOperand Float16Activation(TestInput values) => new(Rounded(values), ElementType.Float16, false);

    public static StoredOperand Float32Weight(TestInput values) => new(values, ElementType.Float32, true);

    /// <summary>A weight of an fp16 folder: the values rounded to float16.</summary>
    public static StoredOperand Float16Weight(TestInput values) => new(Rounded(values), ElementType.Float16, true);

    /// <summary>A weight of a uint8 folder: the values as quantizing and dequantizing them leaves them.</summary>
    public static StoredOperand UInt8Weight(TestInput values, Quantization quantization) =>
        new(values with { Data = ((float[])values.Data).Select(v => quantization.Dequantize(quantization.Quantize(v))).ToArray() },
            ElementType.UInt8, true, quantization);

    private static TestInput Rounded(TestInput input) => input with { Data = ((float[])input.Data).Select(v => (float)(Half)v).ToArray() };

    /// <summary>The operand as the session would hand it over.</summary>
    public Tensor ToTensor(NativeAllocator allocator)
    {
        var values = (float[])Values.Data;
        switch (StoredAs)
        {
            case ElementType.Float16:
                return Tensor.From<Half>(values.Select(v => (Half)v).ToArray(), Values.Shape, allocator);
            case ElementType.UInt8:
            {
                var tensor = Tensor.Allocate(ElementType.UInt8, Values.Shape, allocator, Quantization);
                var bytes = tensor.Span<byte>();
                for (var i = 0; i < values.Length; i++) bytes[i] = Quantization!.Value.Quantize(values[i]);
                return tensor;
            }
            default:
                return Tensor.From<float>(values, Values.Shape, allocator);
        }
    }
}

/// <summary>
/// Runs one operator as the session does with weights that are not widened first (float16 or uint8 as stored), a
/// weight slice budget, and optionally the Ram provider's kept operators, and compares its output with ONNX Runtime's
/// float32 result on the same values.
/// </summary>
internal sealed class StoredWeightHarness : IDisposable
{
    private readonly XnnThreadPool _pool = XnnThreadPool.Create(2);

    public NativeAllocator Allocator { get; } = new();

    public void AssertMatchesOrt(IOperator op, string opType, TestAttributes attributes, IReadOnlyList<StoredOperand?> operands,
        long sliceBytes, PreparedOperatorCache? prepared = null, int runs = 1, bool float16Arithmetic = false,
        double relative = 1e-4, double absolute = 1e-5, bool firstInputDies = false)
    {
        var expected = OperatorTestHarness.RunOrt(opType, operands.Select(o => o?.Values).ToList(), attributes, 1, 17)[0].Item3;
        var descriptors = operands.Select(o => o is null ? null : new TensorDescriptor(o.Values.Name, o.Values.Shape,
            o.Weight ? o.StoredAs : null, o.Quantization, o.Weight ? new WeightLocation("test", 0, 0) : null)).ToArray();
        var node = new GraphNode("node", opType, descriptors, [new TensorDescriptor("y", [])], new NodeAttributes(attributes.Text), "test:1");
        for (var i = 0; i < operands.Count; i++)
            if (operands[i] is { Weight: true, StoredAs: not ElementType.Float32 })
                Assert.That(op.TakesStoredWeight(i), $"{opType} takes input {i} as stored");
        var tensors = operands.Select(o => o?.ToTensor(Allocator)).ToArray();
        try
        {
            for (var run = 0; run < runs; run++)
            {
                var context = new OperatorContext(node, tensors, _pool, Allocator, prepared)
                {
                    WeightSliceBytes = sliceBytes,
                    Float16Kernels = float16Arithmetic,
                    // As the session says of an activation this operation is the last to read: the operator may change it.
                    DyingInputs = firstInputDies ? [0] : null,
                };
                op.Run(context);
                using var output = context.Outputs[0]!;
                var actual = output.ElementType == ElementType.Float16
                    ? output.Span<Half>().ToArray().Select(v => (double)v).ToArray()
                    : output.Span<float>().ToArray().Select(v => (double)v).ToArray();
                Assert.That(actual, Has.Length.EqualTo(expected.Length));
                for (var i = 0; i < expected.Length; i++)
                    if (Math.Abs(actual[i] - expected[i]) > absolute + relative * Math.Abs(expected[i]))
                        Assert.Fail($"run {run + 1}: element {i} is {actual[i]}, ORT says {expected[i]}");
            }
        }
        finally
        {
            foreach (var tensor in tensors) tensor?.Dispose();
        }
        // Kept operators may hold tracked tensors (a direct kernel's kept weights) until the cache is disposed: the caller checks then.
        if (prepared is null) Assert.That(Allocator.CurrentBytes, Is.Zero, "tensors leaked");
    }

    public void Dispose() => _pool.Dispose();
}
