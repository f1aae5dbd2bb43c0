using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Graph.OnnxFormat;
using OnnxStream.Tests.Operators;

namespace OnnxStream.Tests.Runtime;

/// <summary>
/// NaN through Conv → Relu → Add: without <see cref="InferenceSessionOptions.CheckFinite"/> it propagates as in ONNX Runtime
/// (XNNPACK's [-inf, +inf] output clamp used to turn it into -inf, which Relu made 0: a finite output); with it, the run stops
/// at the first operation whose output holds it, named with the model.
/// </summary>
internal sealed class CheckFiniteTests
{
    private const int Channels = 4, Size = 6;

    private static OnnxTestModel ConvReluAdd()
    {
        var model = new OnnxTestModel { OpsetVersion = 17 };
        return model.Input("x", 1, Channels, Size, Size)
            .Initializer(OnnxTestModel.Floats("w", Kernels.Reference.RandomFloats(Channels * Channels * 9, 1, -0.2f, 0.2f), Channels, Channels, 3, 3))
            .Initializer(OnnxTestModel.Floats("one", [1f]))
            .Node("Conv", ["x", "w"], ["c"], "conv", OnnxTestModel.Ints("pads", 1, 1, 1, 1))
            .Node("Relu", ["c"], ["r"], "relu")
            .Node("Add", ["r", "one"], ["out"], "add")
            .Output("out", 1, Channels, Size, Size);
    }

    private static float[] InputWithNaN()
    {
        var x = Kernels.Reference.RandomFloats(Channels * Size * Size, 3, -2, 2);
        x[7] = float.NaN;
        return x;
    }

    [Test]
    public void Without_checking_a_NaN_input_gives_NaN_where_ORT_does()
    {
        using var runner = new SingleInputModel(ConvReluAdd(), [1, Channels, Size, Size]);
        var x = InputWithNaN();
        var expected = runner.RunOrt(x);
        var (_, actual, _) = runner.Run(x, new InferenceSessionOptions { Threads = 2 });
        Assert.That(expected.Count(float.IsNaN), Is.GreaterThan(0), "ORT propagates the NaN");
        Assert.That(actual.Select(float.IsNaN), Is.EqualTo(expected.Select(float.IsNaN)), "NaN at the same elements as ORT");
        for (var i = 0; i < expected.Length; i++)
            if (!float.IsNaN(expected[i])) Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-5), $"element {i}");
    }

    [Test]
    public void With_checking_a_NaN_input_is_an_error_naming_the_model_and_the_first_operation()
    {
        using var runner = new SingleInputModel(ConvReluAdd(), [1, Channels, Size, Size]);
        var error = Assert.Throws<NonFiniteValueException>(() => runner.Run(InputWithNaN(), new InferenceSessionOptions { Threads = 2, CheckFinite = true }))!;
        Assert.That(error.Operation, Is.EqualTo("conv"));
        Assert.That(error.Model, Does.EndWith("model.onnx"));
        Assert.That(error.Message, Does.Contain("Conv node 'conv'").And.Contain("output 'c' [1,4,6,6] holds NaN at element").And.Contain(error.Model));
    }

    [Test]
    public void With_checking_a_finite_run_matches_ORT()
    {
        using var runner = new SingleInputModel(ConvReluAdd(), [1, Channels, Size, Size]);
        var x = Kernels.Reference.RandomFloats(Channels * Size * Size, 3, -2, 2);
        var (_, actual, _) = runner.Run(x, new InferenceSessionOptions { Threads = 2, CheckFinite = true });
        SingleInputModel.AssertClose(actual, runner.RunOrt(x), 1e-5, "output");
    }

    /// <summary>The operators XNNPACK computes with an output clamp: a NaN operand gives NaN, as in ONNX Runtime.</summary>
    [TestCase("Add")]
    [TestCase("Sub")]
    [TestCase("Mul")]
    [TestCase("Div")]
    [TestCase("Conv")]
    [TestCase("Relu")]
    [TestCase("Softmax")]
    public void A_NaN_operand_gives_NaN_as_in_ORT(string opType)
    {
        var x = OperatorTestHarness.RandomFloats(64, 1);
        x[5] = float.NaN;
        if (opType is not ("Conv" or "Softmax")) x[9] = float.PositiveInfinity; // (Conv: a -inf beside a NaN becomes NaN too, see ConvOperator)
        List<TestInput?> inputs = [new TestInput("x", ElementType.Float32, [1, 1, 8, 8], x)];
        if (opType == "Conv") inputs.Add(new TestInput("w", ElementType.Float32, [2, 1, 3, 3], OperatorTestHarness.RandomFloats(18, 2)));
        else if (opType is not ("Relu" or "Softmax")) inputs.Add(new TestInput("y", ElementType.Float32, [1, 1, 8, 8], OperatorTestHarness.RandomFloats(64, 2)));
        OperatorTestHarness.AssertMatchesOrt(opType, inputs);
    }
}
