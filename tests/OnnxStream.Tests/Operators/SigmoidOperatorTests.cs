using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Sigmoid against ONNX Runtime.</summary>
internal sealed class SigmoidOperatorTests
{
    [TestCase(new[] { 1 })]
    [TestCase(new[] { 17 })]
    [TestCase(new[] { 1, 16, 20, 20 })]
    [TestCase(new[] { 3, 100_003 })]
    public void Float32_matches_ORT(int[] shape) =>
        // ORT's MLAS logistic is a rational approximation good to about 1e-7 absolute, so tiny values in the tail
        // (x near -12) differ from XNNPACK's (accurate to 1e-5 relative, see ActivationKernelTests) by more than 1e-5 relative.
        OperatorTestHarness.AssertMatchesOrt("Sigmoid", [TestInput.Floats("x", shape, 1, -12, 12)], relative: 1e-5, absolute: 3e-7);

    [Test]
    public void A_scalar_matches_ORT() =>
        OperatorTestHarness.AssertMatchesOrt("Sigmoid", [new TestInput("x", ElementType.Float32, [], new float[] { 0.75f })],
            relative: 1e-6, absolute: 1e-7);

    [Test]
    public void Extreme_values_saturate() =>
        OperatorTestHarness.AssertMatchesOrt("Sigmoid",
            [new TestInput("x", ElementType.Float32, [6], new[] { -1000f, -90f, 0f, 30f, 90f, 1000f })], relative: 1e-6, absolute: 1e-7);

    [Test]
    public void Float16_gives_the_rounded_float32_results() =>
        Float16Runs.AssertMatchesFloat32("Sigmoid", [TestInput.Floats("x", [2, 33], 2, -8, 8)], new TestAttributes(), relative: 1e-5, absolute: 1e-7);

    [Test]
    public void Int64_is_rejected() =>
        OperatorTestHarness.AssertRejected("Sigmoid", [TestInput.Int64s("x", 1, 2)], null, "X must be float32 or float16, not Int64");
}
