using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Pad. Opset 11+: inputs data, pads (int64: all begin pads, then all end pads), optional
/// constant_value (a scalar of the data's type, default 0) and, opset 18, optional axes (int64 or
/// int32; pads then has 2 values per listed axis). Opset 2: attributes pads and value (float).
/// Attribute mode: constant (default), reflect (mirrored without repeating the edge; pads wider than
/// the dimension keep reflecting, where ONNX Runtime refuses them), edge (the border value repeated),
/// wrap (opset 19: cyclic). Negative pads crop, before reflect, edge and wrap apply (as ONNX Runtime).
/// Any element type.
/// </summary>
internal sealed unsafe class PadOperator : IOperator
{
    /// <summary>Pads smaller than this many output elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    private enum Mode
    {
        Constant,
        Reflect,
        Edge,
        Wrap,
    }

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var data = context.Input(0);
        var shape = InferShape(context, data, out var begin, out var mode);
        var output = context.Output(0, data.ElementType, shape, data.Quantization);
        if (output.ElementCount == 0) return;
        var constant = mode == Mode.Constant ? ConstantBits(context, data) : 0UL;
        // Per axis: output coordinate → input coordinate, or -1 for the constant.
        var maps = new int[shape.Length][];
        for (var axis = 0; axis < shape.Length; axis++)
            maps[axis] = Map(context, mode, data.Shape[axis], shape[axis], begin[axis], axis);
        switch (data.ElementType.Size())
        {
            case 1: Fill<byte>(context, data, output, maps, begin, (byte)constant); break;
            case 2: Fill<ushort>(context, data, output, maps, begin, (ushort)constant); break;
            case 4: Fill<uint>(context, data, output, maps, begin, (uint)constant); break;
            default: Fill<ulong>(context, data, output, maps, begin, constant); break;
        }
    }

    /// <summary>The output shape, the begin pad of every axis, and the mode.</summary>
    private static int[] InferShape(OperatorContext context, Tensor data, out long[] begin, out Mode mode)
    {
        var modeText = context.Attributes.GetString("mode", "constant");
        mode = modeText switch
        {
            "constant" => Mode.Constant,
            "reflect" => Mode.Reflect,
            "edge" => Mode.Edge,
            "wrap" => Mode.Wrap,
            _ => throw context.Error($"mode '{modeText}' is not one of constant, reflect, edge, wrap"),
        };
        var rank = data.Shape.Length;
        long[] pads;
        long[]? axesValues = null;
        if (context.Attributes.Has("pads"))
        {
            if (context.OptionalInput(1) is not null) throw context.Error("has pads both as an attribute (opset 2) and as an input");
            pads = context.Attributes.GetInts("pads")!;
        }
        else
        {
            var padsInput = context.OptionalInput(1) ?? throw context.Error("needs pads (the second input, or the attribute before opset 11)");
            if (padsInput.ElementType != ElementType.Int64) throw context.Error($"pads must be int64, not {padsInput.ElementType}");
            pads = AxisHelper.ReadIndices(context, padsInput, "pads");
            if (context.OptionalInput(3) is { } axesInput) axesValues = AxisHelper.ReadIndices(context, axesInput, "axes");
        }

        var axes = new int[axesValues?.Length ?? rank];
        var seen = new bool[rank];
        for (var i = 0; i < axes.Length; i++)
        {
            axes[i] = axesValues is null ? i : AxisHelper.NormalizeAxis(context, axesValues[i], rank, "axes value");
            if (seen[axes[i]]) throw context.Error($"axes {AxisHelper.Format(axesValues!)} repeat axis {axes[i]}");
            seen[axes[i]] = true;
        }
        if (pads.Length != 2 * axes.Length)
            throw context.Error($"pads {AxisHelper.Format(pads)} has {pads.Length} values; {2 * axes.Length} expected " +
                (axesValues is null ? $"for the input {AxisHelper.Format(data.Shape)}" : $"for axes {AxisHelper.Format(axesValues)}"));

        begin = new long[rank];
        var shape = (int[])data.Shape.Clone();
        for (var i = 0; i < axes.Length; i++)
        {
            var axis = axes[i];
            begin[axis] = pads[i];
            var size = data.Shape[axis] + pads[i] + pads[i + axes.Length];
            if (size < 0 || size > int.MaxValue || Math.Abs(pads[i]) > int.MaxValue || Math.Abs(pads[i + axes.Length]) > int.MaxValue)
                throw context.Error($"pads {AxisHelper.Format(pads)} give axis {axis} of the input {AxisHelper.Format(data.Shape)} size {size}");
            shape[axis] = (int)size;
        }
        return shape;
    }

    /// <summary>
    /// The input coordinate of each output coordinate along one axis (-1: the constant). As ONNX Runtime,
    /// negative pads crop first, and reflect, edge and wrap then work within the cropped range.
    /// </summary>
    private static int[] Map(OperatorContext context, Mode mode, int size, int outputSize, long begin, int axis)
    {
        var end = outputSize - size - begin;
        var first = Math.Max(0, -begin);
        var kept = (int)(size - first - Math.Max(0, -end));
        var offset = Math.Max(0, begin);
        var map = new int[outputSize];
        for (var o = 0; o < outputSize; o++)
        {
            var i = o - offset;
            if (i >= 0 && i < kept)
            {
                map[o] = (int)(first + i);
                continue;
            }
            if (mode != Mode.Constant && kept <= 0)
                throw context.Error($"cannot pad axis {axis} of size {kept} in {mode.ToString().ToLowerInvariant()} mode");
            map[o] = mode switch
            {
                Mode.Constant => -1,
                Mode.Edge => (int)(first + Math.Clamp(i, 0, kept - 1)),
                Mode.Wrap => (int)(first + ((i % kept) + kept) % kept),
                _ => (int)first + Reflect(i, kept),
            };
        }
        return map;
    }

    private static int Reflect(long i, int size)
    {
        if (size == 1) return 0;
        var period = 2L * (size - 1);
        i = Math.Abs(i) % period;
        return (int)(i < size ? i : period - i);
    }

    /// <summary>The constant's bits in the data's element type.</summary>
    private static ulong ConstantBits(OperatorContext context, Tensor data)
    {
        if (context.Attributes.Has("pads"))
        {
            var value = context.Attributes.GetFloat("value", 0);
            return data.ElementType switch
            {
                ElementType.Float32 => BitConverter.SingleToUInt32Bits(value),
                ElementType.Float16 => BitConverter.HalfToUInt16Bits((Half)value),
                ElementType.Int64 => (ulong)(long)value,
                ElementType.Int32 => (uint)(int)value,
                ElementType.Bool => value != 0 ? 1UL : 0UL,
                _ => (byte)value,
            };
        }
        if (context.OptionalInput(2) is not { } constant)
            return data.Quantization is { } quantization ? quantization.ZeroPoint : 0UL;
        if (constant.ElementType != data.ElementType)
            throw context.Error($"constant_value must have the data's type {data.ElementType}, not {constant.ElementType}");
        if (constant.Shape.Length > 1 || constant.ElementCount != 1)
            throw context.Error($"constant_value must be a scalar, not {constant}");
        ulong bits = 0;
        constant.Bytes.CopyTo(new Span<byte>(&bits, sizeof(ulong)));
        return bits;
    }

    private static void Fill<T>(OperatorContext context, Tensor data, Tensor output, int[][] maps, long[] begin, T constant)
        where T : unmanaged
    {
        var shape = output.Shape;
        var rank = shape.Length;
        var source = (nint)AxisHelper.Data(data);
        var destination = (nint)AxisHelper.Data(output);
        if (rank == 0)
        {
            *(T*)destination = *(T*)source;
            return;
        }
        var strides = AxisHelper.Strides(data.Shape);
        var columns = shape[^1];
        var lastMap = maps[^1];
        // The run of the last axis that copies the input contiguously: output [first, end).
        var first = (int)Math.Clamp(begin[^1], 0, columns);
        var end = (int)Math.Clamp(begin[^1] + data.Shape[^1], first, columns);
        var rows = output.ElementCount / columns;

        void Rows(long start, long stop)
        {
            for (var row = start; row < stop; row++)
            {
                var y = (T*)destination + row * columns;
                long offset = 0;
                var rest = row;
                var constantRow = false;
                for (var axis = rank - 2; axis >= 0; axis--)
                {
                    var index = maps[axis][rest % shape[axis]];
                    rest /= shape[axis];
                    if (index < 0) constantRow = true;
                    offset += index * strides[axis];
                }
                if (constantRow)
                {
                    new Span<T>(y, columns).Fill(constant);
                    continue;
                }
                var x = (T*)source + offset;
                for (var o = 0; o < first; o++) y[o] = lastMap[o] < 0 ? constant : x[lastMap[o]];
                if (end > first)
                    Buffer.MemoryCopy(x + (first - begin[^1]), y + first, (long)(end - first) * sizeof(T), (long)(end - first) * sizeof(T));
                for (var o = end; o < columns; o++) y[o] = lastMap[o] < 0 ? constant : x[lastMap[o]];
            }
        }

        if (output.ElementCount < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism <= 1 || rows == 1)
        {
            Rows(0, rows);
            return;
        }
        var chunks = (int)Math.Min(rows, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk => Rows(rows * chunk / chunks, rows * (chunk + 1) / chunks));
    }

    /// <summary>The output shape of a Pad node (for shape inference).</summary>
    public static int[] InferShape(OperatorContext context, Tensor data) => InferShape(context, data, out _, out _);
}
