using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX CumSum: running sums along the axis given by input 1 (an int64 or int32 scalar; negative counts
/// from the end). Attributes exclusive (1: each sum leaves out its own element) and reverse (1: sums run
/// from the end). float32, float16 (accumulated in float32, then rounded), int64, int32 (wrapping).
/// </summary>
internal sealed unsafe class CumSumOperator : IOperator
{
    /// <summary>Tensors smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var shape = InferShape(context, x, context.Input(1), out var axis, out var exclusive, out var reverse);
        var output = context.Output(0, x.ElementType, shape);
        if (output.ElementCount == 0) return;
        var outer = AxisHelper.Product(shape, 0, axis);
        var count = shape[axis];
        var inner = (int)AxisHelper.Product(shape, axis + 1, shape.Length);
        switch (x.ElementType)
        {
            case ElementType.Float32:
                Sum<float>(context, x, output, outer, count, inner, exclusive, reverse);
                break;
            case ElementType.Float16:
            {
                using var wide = Layout.ToFloat32(context, x, "x", out _);
                using var result = context.Scratch(ElementType.Float32, shape);
                Sum<float>(context, wide, result, outer, count, inner, exclusive, reverse);
                Layout.FromFloat32(context, result, output);
                break;
            }
            case ElementType.Int64:
                Sum<long>(context, x, output, outer, count, inner, exclusive, reverse);
                break;
            default:
                Sum<int>(context, x, output, outer, count, inner, exclusive, reverse);
                break;
        }
    }

    /// <summary>Checks the inputs and attributes; the output has the input's shape.</summary>
    public static int[] InferShape(OperatorContext context, Tensor x, Tensor axisInput, out int axis, out bool exclusive, out bool reverse)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16 or ElementType.Int64 or ElementType.Int32))
            throw context.Error($"x must be float32, float16, int64 or int32, not {x.ElementType}");
        if (x.Shape.Length == 0) throw context.Error("x must have rank 1 or more");
        if (axisInput.Shape.Length > 1 || axisInput.ElementCount != 1)
            throw context.Error($"axis must be a scalar, not {axisInput}");
        axis = AxisHelper.NormalizeAxis(context, AxisHelper.ReadIndices(context, axisInput, "axis")[0], x.Shape.Length);
        exclusive = Flag(context, "exclusive");
        reverse = Flag(context, "reverse");
        return (int[])x.Shape.Clone();
    }

    private static bool Flag(OperatorContext context, string name)
    {
        var value = context.Attributes.GetInt(name, 0);
        return value is 0 or 1 ? value == 1 : throw context.Error($"{name} must be 0 or 1, not {value}");
    }

    private static void Sum<T>(OperatorContext context, Tensor x, Tensor output, long outer, int count, int inner, bool exclusive, bool reverse)
        where T : unmanaged, INumber<T>
    {
        var source = (nint)AxisHelper.Data(x);
        var destination = (nint)AxisHelper.Data(output);
        var plane = (long)count * inner;

        void Planes(long start, long end)
        {
            for (var o = start; o < end; o++)
            {
                var xs = (T*)source + o * plane;
                var ys = (T*)destination + o * plane;
                if (inner == 1)
                {
                    // One running sum along a contiguous run.
                    var sum = T.Zero;
                    for (var s = 0; s < count; s++)
                    {
                        var a = reverse ? count - 1 - s : s;
                        if (exclusive)
                        {
                            ys[a] = sum;
                            sum += xs[a];
                        }
                        else
                        {
                            sum += xs[a];
                            ys[a] = sum;
                        }
                    }
                    continue;
                }
                // Row by row: row a = row before + x row (the x row before, when exclusive).
                Span<T> Row(T* p, int a) => new(p + (long)a * inner, inner);
                for (var s = 0; s < count; s++)
                {
                    var a = reverse ? count - 1 - s : s;
                    var previous = reverse ? a + 1 : a - 1;
                    if (s == 0)
                    {
                        if (exclusive) Row(ys, a).Clear();
                        else Row(xs, a).CopyTo(Row(ys, a));
                    }
                    else TensorPrimitives.Add<T>(Row(ys, previous), Row(xs, exclusive ? previous : a), Row(ys, a));
                }
            }
        }

        if ((long)output.ElementCount < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism <= 1 || outer == 1)
        {
            Planes(0, outer);
            return;
        }
        var chunks = (int)Math.Min(outer, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk => Planes(outer * chunk / chunks, outer * (chunk + 1) / chunks));
    }
}
