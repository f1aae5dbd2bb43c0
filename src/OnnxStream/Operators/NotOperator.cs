using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>ONNX Not: logical negation of a bool tensor (any nonzero byte counts as true).</summary>
internal sealed class NotOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var output = context.Output(0, ElementType.Bool, InferShape(context, x));
        UnaryElementwise.Apply<byte>(context, x, output, static (a, b) =>
        {
            for (var i = 0; i < a.Length; i++) b[i] = a[i] == 0 ? (byte)1 : (byte)0;
        });
    }

    /// <summary>Checks the input is bool; the output has its shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x) =>
        x.ElementType == ElementType.Bool
            ? (int[])x.Shape.Clone()
            : throw context.Error($"X must be bool, not {x.ElementType}");
}
