using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Trilu: of each matrix in the last two dimensions, keeps the upper (attribute upper = 1, the
/// default: column − row ≥ k) or lower (upper = 0: column − row ≤ k) triangle and zeroes the rest; k
/// is an optional int64 scalar input (default 0). Any element type.
/// </summary>
internal sealed unsafe class TriluOperator : IOperator
{
    /// <summary>Outputs smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var input = context.Input(0);
        var shape = InferShape(context, input, out var upper, out var k);
        var output = context.Output(0, input.ElementType, shape, input.Quantization);
        if (output.ElementCount == 0) return;
        if (input.Quantization is { } quantization) output.Span<byte>().Fill(quantization.ZeroPoint);
        var rows = shape[^2];
        var columns = shape[^1];
        var elementSize = input.ElementType.Size();
        var source = (nint)AxisHelper.Data(input);
        var destination = (nint)AxisHelper.Data(output);
        var allRows = (long)output.ElementCount / columns;

        void Rows(long start, long end)
        {
            for (var r = start; r < end; r++)
            {
                var row = r % rows;
                // Kept columns [first, last).
                long first = upper ? Math.Clamp(row + k, 0, columns) : 0;
                long last = upper ? columns : Math.Clamp(row + k + 1, 0, columns);
                if (last <= first) continue;
                var offset = (r * columns + first) * elementSize;
                var bytes = (last - first) * elementSize;
                Buffer.MemoryCopy((byte*)source + offset, (byte*)destination + offset, bytes, bytes);
            }
        }

        if (output.ElementCount < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism <= 1 || allRows == 1)
        {
            Rows(0, allRows);
            return;
        }
        var chunks = (int)Math.Min(allRows, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk => Rows(allRows * chunk / chunks, allRows * (chunk + 1) / chunks));
    }

    /// <summary>The output shape (the input's), whether the upper triangle is kept, and k.</summary>
    public static int[] InferShape(OperatorContext context, Tensor input, out bool upper, out long k)
    {
        if (input.Shape.Length < 2) throw context.Error($"input must have rank 2 or more, not {input}");
        var upperValue = context.Attributes.GetInt("upper", 1);
        if (upperValue is not (0 or 1)) throw context.Error($"upper must be 0 or 1, not {upperValue}");
        upper = upperValue == 1;
        k = 0;
        if (context.OptionalInput(1) is { } kInput)
        {
            if (kInput.ElementType != ElementType.Int64) throw context.Error($"k must be int64, not {kInput.ElementType}");
            if (kInput.Shape.Length > 1 || kInput.ElementCount != 1) throw context.Error($"k must be a scalar, not {kInput}");
            k = kInput.Span<long>()[0];
            // Beyond ±(rows + columns) every k keeps all or nothing; clamping avoids overflow.
            k = Math.Clamp(k, -(long)int.MaxValue, int.MaxValue);
        }
        return (int[])input.Shape.Clone();
    }
}
