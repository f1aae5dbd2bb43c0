using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>An associative elementwise operation that folds any number of operands (Max, Min, Sum).</summary>
internal interface IVariadicOperation
{
    /// <summary>The operation on two values.</summary>
    static abstract T Apply<T>(T a, T b) where T : INumber<T>;
}

/// <summary>
/// The shared kernel of Max, Min and Sum: one or more inputs of one type (float32, float16, int64, int32)
/// with broadcasting, folded left to right; float16 is folded in float32 and rounded once.
/// </summary>
internal abstract class VariadicElementwiseOperator<TOperation> : IOperator where TOperation : IVariadicOperation
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var shape = InferShape(context, out var inputs);
        var output = context.Output(0, inputs[0].ElementType, shape);
        switch (output.ElementType)
        {
            case ElementType.Float32: Broadcasting.Fold<float, Op<float>>(context, inputs, output); break;
            case ElementType.Float16: Broadcasting.FoldFloat16<Op<float>>(context, inputs, output); break;
            case ElementType.Int64: Broadcasting.Fold<long, Op<long>>(context, inputs, output); break;
            default: Broadcasting.Fold<int, Op<int>>(context, inputs, output); break;
        }
    }

    /// <summary>Checks the inputs' types; the output shape is the broadcast of all of them.</summary>
    public static int[] InferShape(OperatorContext context, out Tensor[] inputs) =>
        Broadcasting.VariadicShape(context, out inputs, ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32);

    private readonly struct Op<T> : Broadcasting.IBinaryOp<T, T, T> where T : INumber<T>
    {
        public static T Apply(T a, T b) => TOperation.Apply(a, b);
    }
}
