using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Operators;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Quantizing;

/// <summary>
/// The uint8 kernel paths of Conv, MatMul, Add, Sub, Mul, Sigmoid and Softmax: given quantized operands and an output
/// quantization they write a uint8 output that agrees with the same operator run in float32 on the dequantized
/// operands to within one output step (XNNPACK requantizes once, rounding to nearest); without an output
/// quantization they compute in float32 on the dequantized operands.
/// </summary>
internal sealed class QuantizedOperatorTests
{
    private readonly NativeAllocator _allocator = new();
    private XnnThreadPool _pool = null!;

    [OneTimeSetUp]
    public void CreatePool() => _pool = XnnThreadPool.Create(2);

    [OneTimeTearDown]
    public void DisposePool() => _pool.Dispose();

    [TearDown]
    public void NoLeaks() => Assert.That(_allocator.CurrentBytes, Is.Zero, "tensors leaked");

    [Test]
    public void Conv_runs_in_uint8()
    {
        var attributes = new Dictionary<string, string> { ["kernel_shape"] = "3,3", ["pads"] = "1,1,1,1", ["strides"] = "1,1" };
        Check("Conv", attributes, [Operand([1, 8, 6, 6], 1, -1, 2), Operand([4, 8, 3, 3], 2, -0.3f, 0.3f, weight: true), Floats([4], 3, weight: true)]);
    }

    [Test]
    public void Grouped_strided_Conv_runs_in_uint8()
    {
        var attributes = new Dictionary<string, string> { ["kernel_shape"] = "3,3", ["pads"] = "0,1,1,0", ["strides"] = "2,2", ["group"] = "2" };
        Check("Conv", attributes, [Operand([2, 4, 7, 5], 4, -0.5f, 3), Operand([6, 2, 3, 3], 5, -0.5f, 0.2f, weight: true)]);
    }

    [Test]
    public void MatMul_with_a_weight_runs_in_uint8() =>
        Check("MatMul", [], [Operand([2, 5, 16], 6, -1, 1), Operand([16, 7], 7, -0.4f, 0.4f, weight: true)]);

    [TestCase("Add")]
    [TestCase("Sub")]
    [TestCase("Mul")]
    public void Binary_operations_run_in_uint8_with_broadcasting(string opType) =>
        Check(opType, [], [Operand([2, 3, 4, 5], 8, -2, 1), Operand([3, 1, 5], 9, -0.5f, 3)]);

    [Test]
    public void Sigmoid_runs_in_uint8_with_its_fixed_output_encoding() =>
        Check("Sigmoid", [], [Operand([3, 50], 10, -6, 6)]);

    [Test]
    public void Softmax_runs_in_uint8_along_the_last_axis_with_its_fixed_output_encoding() =>
        Check("Softmax", [], [Operand([4, 6, 3], 11, -8, 8)]); // short rows: probabilities reach ~1

    [Test]
    public void Softmax_along_another_axis_or_with_a_finer_calibrated_output_dequantizes()
    {
        var (x, _) = Operand([2, 3, 4], 12, -1, 1);
        using (x)
        {
            using (var y = Run("Softmax", new Dictionary<string, string> { ["axis"] = "1" }, [(x, false)], new Quantization(0.01f, 0)))
                Assert.That(y.ElementType, Is.EqualTo(ElementType.Float32), "not the last axis");
            using (var y = Run("Softmax", [], [(x, false)], new Quantization(1f / 1024, 0)))
                Assert.That(y.ElementType, Is.EqualTo(ElementType.Float32), "1/256 is four times as coarse as the calibrated scale");
        }
    }

    /// <summary>Runs <paramref name="opType"/> quantized and in float; checks the uint8 output against the float one.</summary>
    private void Check(string opType, Dictionary<string, string> attributes, (Tensor Tensor, bool Weight)[] operands)
    {
        try
        {
            using var reference = Run(opType, attributes, operands, null);
            Assert.That(reference.ElementType, Is.EqualTo(ElementType.Float32), "no output quantization: float32");
            var values = reference.Span<float>();
            var outputQuantization = Quantization.FromRange(TensorPrimitivesMin(values), TensorPrimitivesMax(values))!.Value;
            using var quantized = Run(opType, attributes, operands, outputQuantization);
            Assert.That(quantized.ElementType, Is.EqualTo(ElementType.UInt8));
            // XNNPACK fixes the sigmoid's and softmax's output encoding; the others take the one asked for.
            if (opType is "Sigmoid" or "Softmax") outputQuantization = Quantization.SigmoidOutput;
            Assert.That(quantized.Quantization, Is.EqualTo(outputQuantization));
            Assert.That(quantized.Shape, Is.EqualTo(reference.Shape));
            var bytes = quantized.Span<byte>();
            var worst = 0.0;
            for (var i = 0; i < bytes.Length; i++)
                worst = Math.Max(worst, Math.Abs(outputQuantization.Dequantize(bytes[i]) - values[i]) / outputQuantization.Scale);
            TestContext.Out.WriteLine($"{opType}: max error {worst:F3} output steps");
            // XNNPACK's uint8 softmax takes exp from a 256-entry table and normalizes in its own fixed point: up to
            // about one more step (measured 0.996 on x86-64).
            Assert.That(worst, Is.LessThanOrEqualTo(opType == "Softmax" ? 1.5 : 1.0));
        }
        finally
        {
            foreach (var (tensor, _) in operands) tensor.Dispose();
        }
    }

    private static float TensorPrimitivesMin(ReadOnlySpan<float> values) => System.Numerics.Tensors.TensorPrimitives.Min(values);

    private static float TensorPrimitivesMax(ReadOnlySpan<float> values) => System.Numerics.Tensors.TensorPrimitives.Max(values);

    private Tensor Run(string opType, Dictionary<string, string> attributes, (Tensor Tensor, bool Weight)[] operands, Quantization? outputQuantization)
    {
        var inputs = operands.Select((o, i) => new TensorDescriptor($"in{i}", o.Tensor.Shape,
            o.Weight ? o.Tensor.ElementType : null, o.Weight ? o.Tensor.Quantization : null,
            o.Weight ? new WeightLocation("test", 0, o.Tensor.ByteCount) : null)).ToArray<TensorDescriptor?>();
        var node = new GraphNode("node", opType, inputs, [new TensorDescriptor("y", [])], new NodeAttributes(attributes), "test:1");
        Assert.That(OperatorRegistry.Default.TryGet(opType, out var op));
        for (var i = 0; i < operands.Length; i++)
            Assert.That(op.TakesQuantized(i), Is.EqualTo(operands[i].Tensor.Quantization is not null), $"{opType} takes input {i} quantized");
        var context = new OperatorContext(node, operands.Select(o => o.Tensor).ToArray<Tensor?>(), _pool, _allocator) { OutputQuantization = outputQuantization };
        op.Run(context);
        return context.Outputs[0]!;
    }

    /// <summary>Seeded values in [min, max], quantized over their own range.</summary>
    private (Tensor, bool) Operand(int[] shape, int seed, float min, float max, bool weight = false)
    {
        var (values, _) = Floats(shape, seed, weight, min, max);
        using (values)
        {
            var quantization = Quantization.FromRange(min, max)!.Value;
            var tensor = Tensor.Allocate(ElementType.UInt8, shape, _allocator, quantization);
            ConversionKernels.Quantize(_pool, values.ElementCount, values.Buffer<float>(), tensor.Buffer<byte>(), quantization);
            return (tensor, weight);
        }
    }

    private (Tensor, bool) Floats(int[] shape, int seed, bool weight, float min = -1, float max = 1)
    {
        var values = Operators.OperatorTestHarness.RandomFloats((int)Shapes.ElementCount(shape), seed, min, max);
        return (Tensor.From<float>(values, shape, _allocator), weight);
    }
}
