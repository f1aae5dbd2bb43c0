using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX ArgMax (opset 13): the int64 index of the largest element along <c>axis</c> (default 0, negative
/// counts from the end). keepdims (default 1) keeps the axis with size 1; select_last_index (default 0)
/// picks the last of equal maxima instead of the first. float32, float16 (compared exactly, no widening
/// needed), int64 (CLIP's end-of-text token lookup) and int32. A NaN never beats the running maximum
/// (it is only chosen when it comes first). The axis must not be empty.
/// </summary>
internal sealed unsafe class ArgMaxOperator : IOperator
{
    /// <summary>Inputs smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <summary>Inner elements tracked together when the axis is not the innermost one.</summary>
    private const int Block = 256;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var shape = InferShape(context, x, out var axis, out var selectLast);
        var output = context.Output(0, ElementType.Int64, shape);
        if (output.ElementCount == 0) return;
        var outer = AxisHelper.Product(x.Shape, 0, axis);
        var count = x.Shape[axis];
        var inner = (int)AxisHelper.Product(x.Shape, axis + 1, x.Shape.Length);
        switch (x.ElementType)
        {
            case ElementType.Float32: Find<float>(context, x, output, outer, count, inner, selectLast); break;
            case ElementType.Float16: Find<Half>(context, x, output, outer, count, inner, selectLast); break;
            case ElementType.Int64: Find<long>(context, x, output, outer, count, inner, selectLast); break;
            default: Find<int>(context, x, output, outer, count, inner, selectLast); break;
        }
    }

    /// <summary>Checks the input and attributes; returns the output shape and the normalized axis.</summary>
    internal static int[] InferShape(OperatorContext context, Tensor x, out int axis, out bool selectLast)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16 or ElementType.Int64 or ElementType.Int32))
            throw context.Error($"data must be float32, float16, int64 or int32, not {x.ElementType}");
        if (x.Shape.Length == 0) throw context.Error("data must have rank 1 or more, not be a scalar");
        axis = AxisHelper.NormalizeAxis(context, context.Attributes.GetInt("axis", 0), x.Shape.Length);
        var keepDims = context.Attributes.GetInt("keepdims", 1);
        if (keepDims is not (0 or 1)) throw context.Error($"keepdims must be 0 or 1, not {keepDims}");
        var last = context.Attributes.GetInt("select_last_index", 0);
        if (last is not (0 or 1)) throw context.Error($"select_last_index must be 0 or 1, not {last}");
        selectLast = last == 1;
        if (x.Shape[axis] == 0 && AxisHelper.Product(x.Shape, 0, axis) * AxisHelper.Product(x.Shape, axis + 1, x.Shape.Length) > 0)
            throw context.Error($"axis {axis} of data {AxisHelper.Format(x.Shape)} is empty; there is no maximum");
        var shape = (int[])x.Shape.Clone();
        if (keepDims == 1) shape[axis] = 1;
        else shape = [.. shape[..axis], .. shape[(axis + 1)..]];
        return shape;
    }

    private static void Find<T>(OperatorContext context, Tensor x, Tensor output, long outer, int count, int inner, bool selectLast)
        where T : unmanaged, INumber<T>
    {
        var source = (nint)AxisHelper.Data(x);
        var destination = (nint)AxisHelper.Data(output);
        var blocks = (inner + Block - 1) / Block;
        var items = inner == 1 ? outer : outer * blocks;

        void Items(long start, long end)
        {
            if (inner == 1)
            {
                // The axis is contiguous: one scan per outer index.
                for (var o = start; o < end; o++)
                {
                    var row = (T*)source + o * count;
                    var max = row[0];
                    var index = 0;
                    for (var c = 1; c < count; c++)
                    {
                        var v = row[c];
                        if (v > max || (selectLast && v == max))
                        {
                            max = v;
                            index = c;
                        }
                    }
                    ((long*)destination)[o] = index;
                }
                return;
            }
            // The axis is strided: walk it row by row, keeping a block of running maxima.
            Span<T> best = stackalloc T[Block];
            for (var item = start; item < end; item++)
            {
                var o = item / blocks;
                var i0 = (int)(item % blocks) * Block;
                var length = Math.Min(Block, inner - i0);
                var plane = (T*)source + o * count * inner + i0;
                var indices = new Span<long>((long*)destination + o * inner + i0, length);
                new ReadOnlySpan<T>(plane, length).CopyTo(best);
                indices.Clear();
                for (var c = 1; c < count; c++)
                {
                    var row = plane + (long)c * inner;
                    for (var i = 0; i < length; i++)
                    {
                        var v = row[i];
                        if (v > best[i] || (selectLast && v == best[i]))
                        {
                            best[i] = v;
                            indices[i] = c;
                        }
                    }
                }
            }
        }

        if (outer * count * inner < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism <= 1 || items == 1)
        {
            Items(0, items);
            return;
        }
        var chunks = (int)Math.Min(items, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk => Items(items * chunk / chunks, items * (chunk + 1) / chunks));
    }
}
