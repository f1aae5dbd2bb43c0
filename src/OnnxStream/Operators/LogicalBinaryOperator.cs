using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// The shared kernel of And and Or: two bool tensors with broadcasting (any nonzero byte counts as true),
/// combined by <typeparamref name="TOperation"/>.
/// </summary>
internal abstract class LogicalBinaryOperator<TOperation> : IOperator where TOperation : Broadcasting.IBinaryOp<byte, byte, byte>
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var a = context.Input(0);
        var b = context.Input(1);
        var output = context.Output(0, ElementType.Bool, InferShape(context, a, b));
        Broadcasting.Binary<byte, byte, byte, TOperation>(context, a, b, output);
    }

    /// <summary>Checks both operands are bool; the output shape is their broadcast.</summary>
    public static int[] InferShape(OperatorContext context, Tensor a, Tensor b) =>
        a.ElementType == ElementType.Bool && b.ElementType == ElementType.Bool
            ? Broadcasting.Shape(context, a.Shape, b.Shape)
            : throw context.Error($"A and B must be bool, not {a.ElementType} and {b.ElementType}");
}
