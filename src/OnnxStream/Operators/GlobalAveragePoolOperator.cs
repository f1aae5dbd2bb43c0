using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX GlobalAveragePool: X [N, C, D1, …, Dk] (k ≥ 1) → Y [N, C, 1, …, 1], each (n, c) plane replaced by
/// the mean of its elements. float32, and float16 summed in float32 and rounded back. An empty plane
/// (some Di = 0) averages to NaN, as 0/0.
/// </summary>
internal sealed unsafe class GlobalAveragePoolOperator : IOperator
{
    /// <summary>Inputs smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <summary>Summed at a time (spans are int-sized).</summary>
    private const int Chunk = 1 << 30;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var shape = InferShape(context, x);
        var output = context.Output(0, x.ElementType, shape);
        if (output.ElementCount == 0) return;

        var xf = Layout.ToFloat32(context, x, "X", out var ownsX);
        Tensor? result = null;
        try
        {
            result = output.ElementType == ElementType.Float32 ? output : context.Scratch(ElementType.Float32, shape);
            var planes = shape[0] * shape[1];
            var size = AxisHelper.Product(x.Shape, 2, x.Shape.Length);
            var src = (nint)AxisHelper.Data(xf);
            var dst = (float*)AxisHelper.Data(result);
            void Plane(int p)
            {
                var s = (float*)src + p * size;
                var sum = 0f;
                for (long start = 0; start < size; start += Chunk)
                    sum += TensorPrimitives.Sum(new ReadOnlySpan<float>(s + start, (int)Math.Min(Chunk, size - start)));
                dst[p] = sum / size;
            }
            if (planes * size < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism == 1 || planes == 1)
                for (var p = 0; p < planes; p++) Plane(p);
            else
                Parallel.For(0, planes, context.Parallel, Plane);
            if (result != output) Layout.FromFloat32(context, result, output);
        }
        finally
        {
            if (ownsX) xf.Dispose();
            if (result != output) result?.Dispose();
        }
    }

    /// <summary>Checks X; the output keeps N and C and has 1 in every spatial dimension.</summary>
    internal static int[] InferShape(OperatorContext context, Tensor x)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16))
            throw context.Error($"X must be float32 or float16, not {x.ElementType}");
        if (x.Shape.Length < 3)
            throw context.Error($"X must be [N, C, D1, …] with at least one spatial dimension, got {AxisHelper.Format(x.Shape)}");
        var shape = new int[x.Shape.Length];
        Array.Fill(shape, 1);
        shape[0] = x.Shape[0];
        shape[1] = x.Shape[1];
        return shape;
    }
}
