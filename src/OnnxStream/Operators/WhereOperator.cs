using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Where: condition ? X : Y elementwise with three-way broadcasting. condition is bool; X and Y
/// have one type, any (the elements are moved as bytes); the output has that type.
/// </summary>
internal sealed class WhereOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var condition = context.Input(0);
        var x = context.Input(1);
        var y = context.Input(2);
        var output = context.Output(0, x.ElementType, InferShape(context, condition, x, y), x.Quantization);
        switch (x.ElementType.Size())
        {
            case 1: Broadcasting.Ternary<byte, byte, byte, byte, Select<byte>>(context, condition, x, y, output); break;
            case 2: Broadcasting.Ternary<byte, ushort, ushort, ushort, Select<ushort>>(context, condition, x, y, output); break;
            case 4: Broadcasting.Ternary<byte, uint, uint, uint, Select<uint>>(context, condition, x, y, output); break;
            default: Broadcasting.Ternary<byte, ulong, ulong, ulong, Select<ulong>>(context, condition, x, y, output); break;
        }
    }

    /// <summary>Checks the types; the output shape is the broadcast of all three inputs.</summary>
    public static int[] InferShape(OperatorContext context, Tensor condition, Tensor x, Tensor y)
    {
        if (condition.ElementType != ElementType.Bool)
            throw context.Error($"condition must be bool, not {condition.ElementType}");
        if (x.ElementType != y.ElementType)
            throw context.Error($"X and Y must have the same type, not {x.ElementType} and {y.ElementType}");
        if (x.Quantization != y.Quantization)
            throw context.Error("X and Y are quantized differently");
        return Broadcasting.Shape(context, condition.Shape, x.Shape, y.Shape);
    }

    private readonly struct Select<T> : Broadcasting.ITernaryOp<byte, T, T, T>
    {
        public static T Apply(byte condition, T x, T y) => condition != 0 ? x : y;
    }
}
