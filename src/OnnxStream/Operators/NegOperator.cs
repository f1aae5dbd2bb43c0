using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>ONNX Neg: -x elementwise; float32, float16 (through float32), int64 and int32 (wrapping).</summary>
internal sealed class NegOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var output = context.Output(0, x.ElementType, InferShape(context, x));
        switch (x.ElementType)
        {
            case ElementType.Int64:
                UnaryElementwise.Apply<long>(context, x, output, static (a, b) => TensorPrimitives.Negate(a, b));
                break;
            case ElementType.Int32:
                UnaryElementwise.Apply<int>(context, x, output, static (a, b) => TensorPrimitives.Negate(a, b));
                break;
            default:
                UnaryElementwise.Apply(context, x, output, static (a, b) => TensorPrimitives.Negate(a, b));
                break;
        }
    }

    /// <summary>Checks the input's type; the output has its shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x) =>
        x.ElementType is ElementType.Float32 or ElementType.Float16 or ElementType.Int64 or ElementType.Int32
            ? (int[])x.Shape.Clone()
            : throw context.Error($"X must be float32, float16, int64 or int32, not {x.ElementType}");
}
