using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>ONNX Or: logical a ∨ b of two bool tensors with broadcasting (any nonzero byte counts as true).</summary>
internal sealed class OrOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var a = context.Input(0);
        var b = context.Input(1);
        var output = context.Output(0, ElementType.Bool, InferShape(context, a, b));
        Broadcasting.Binary<byte, byte, byte, Op>(context, a, b, output);
    }

    /// <summary>Checks both operands are bool; the output shape is their broadcast.</summary>
    public static int[] InferShape(OperatorContext context, Tensor a, Tensor b) =>
        a.ElementType == ElementType.Bool && b.ElementType == ElementType.Bool
            ? Broadcasting.Shape(context, a.Shape, b.Shape)
            : throw context.Error($"A and B must be bool, not {a.ElementType} and {b.ElementType}");

    private readonly struct Op : Broadcasting.IBinaryOp<byte, byte, byte>
    {
        public static byte Apply(byte a, byte b) => (a != 0 | b != 0) ? (byte)1 : (byte)0;
    }
}
