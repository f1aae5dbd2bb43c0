using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Checks the harness itself: an operator OnnxStream lacks is rejected, and ORT runs the graphs it builds.</summary>
internal sealed class HarnessSelfTests
{
    [Test]
    public void An_unsupported_operator_is_named_when_the_session_is_created()
    {
        var error = Assert.Throws<OnnxStream.Graph.ModelFormatException>(() => OperatorTestHarness.RunOnnxStream("NoSuchOp",
            [TestInput.Floats("x", [2], 1)], new TestAttributes(), 1, 1))!;
        Assert.That(error.Message, Does.Contain("'NoSuchOp'"));
    }
}
