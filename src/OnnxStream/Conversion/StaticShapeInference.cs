using System.Runtime.InteropServices;
using OnnxStream.Graph;
using OnnxStream.Graph.OnnxFormat;
using OnnxStream.Tensors;

namespace OnnxStream.Conversion;

/// <summary>
/// The shapes ONNX's own shape inference (<c>onnx.shape_inference.infer_shapes</c>, without data
/// propagation) gives a graph's activations, which is what the original converter writes into model.txt:
/// it runs that inference and copies each tensor's value_info. The rules are ONNX's, operator by operator:
/// a shape is known only from the input shapes and from the values of constants (initializers and Constant
/// nodes), never from values computed by the graph (a Reshape to a computed Shape gets no shape at all);
/// an unknown dimension stays unknown, and one input of unknown rank usually leaves the output without a
/// shape. Operators outside the set below get no shape.
/// </summary>
internal static class StaticShapeInference
{
    /// <summary>An unknown dimension (written as 0 in model.txt).</summary>
    public const long Unknown = -1;

    private static readonly HashSet<string> SameShape = new(StringComparer.Ordinal)
    {
        "Identity", "Dropout", "Sigmoid", "Sqrt", "Erf", "Sin", "Cos", "Tan", "Relu", "Tanh", "Exp", "Log", "Neg", "Abs",
        "Cast", "CastLike", "Softmax", "LogSoftmax", "InstanceNormalization", "LayerNormalization", "BatchNormalization",
        "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Softplus", "Not", "Floor", "Ceil", "Round", "Reciprocal",
        "CumSum", "Elu", "Selu", "Gelu", "Trilu", "Sign", "IsNaN", "IsInf", "Mish", "Celu", "ThresholdedRelu", "Softsign",
        "LpNormalization", "Hardmax",
    };

    private static readonly HashSet<string> Broadcasting = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
        "And", "Or", "Xor", "Where", "Max", "Min", "Sum", "Mean", "PRelu", "BitShift",
    };

    private static readonly HashSet<string> Reductions = new(StringComparer.Ordinal)
    {
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
        "ReduceLogSumExp", "ReduceSumSquare",
    };

    /// <summary>
    /// Each activation's shape (null: not even the rank is known), from the graph inputs' declared shapes,
    /// in node order. A declared value_info shape is kept where inference knows nothing.
    /// </summary>
    public static Dictionary<string, long[]?> Infer(ModelGraph graph)
    {
        var shapes = new Dictionary<string, long[]?>(StringComparer.Ordinal);
        foreach (var input in graph.Inputs) shapes[input.Name] = Declared(input);
        foreach (var node in graph.Nodes)
        {
            var inputs = node.Inputs.Select(i => i is null ? null : i.IsWeight ? i.Shape.Select(d => (long)d).ToArray() : shapes.GetValueOrDefault(i.Name)).ToArray();
            long[]?[] outputs;
            try
            {
                outputs = InferNode(node, inputs);
            }
            catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or FormatException or InvalidOperationException or ModelFormatException)
            {
                outputs = []; // ONNX leaves a node it cannot infer without shapes, too
            }
            for (var k = 0; k < node.Outputs.Length; k++)
                shapes[node.Outputs[k].Name] = k < outputs.Length && outputs[k] is { } shape ? shape : Declared(node.Outputs[k]);
        }
        return shapes;
    }

    private static long[]? Declared(TensorDescriptor activation) =>
        activation.Shape.Length == 0 ? null : activation.Shape.Select(d => d > 0 ? d : Unknown).ToArray();

    private static long[]?[] InferNode(GraphNode node, long[]?[] inputs)
    {
        long[]? In(int i) => i < inputs.Length ? inputs[i] : null;
        var x = In(0);
        var op = node.OpType;
        if (SameShape.Contains(op)) return [x];
        if (Broadcasting.Contains(op))
        {
            var present = inputs.Where((_, i) => node.Inputs[i] is not null).ToArray();
            return [present.Length > 0 && present.All(s => s is not null) ? Broadcast(present!) : null];
        }
        if (Reductions.Contains(op)) return [Reduce(node, x)];
        return op switch
        {
            "MatMul" => [MatMul(x, In(1))],
            "Gemm" => [Gemm(node, x, In(1))],
            "Transpose" => [Transpose(node, x)],
            "Conv" or "MaxPool" or "AveragePool" or "LpPool" => [ConvPool(node, x, op == "Conv" ? In(1) : null)],
            "GlobalAveragePool" or "GlobalMaxPool" => [x is { Length: >= 2 } ? [x[0], x[1], .. Enumerable.Repeat(1L, x.Length - 2)] : null],
            "Shape" => [[ShapeLength(node, x)]],
            "Size" => [[]],
            "Reshape" => [Reshape(node, x)],
            "Flatten" => [Flatten(node, x)],
            "Unsqueeze" => [Unsqueeze(node, x)],
            "Squeeze" => [Squeeze(node, x)],
            "Concat" => [Concat(node, inputs)],
            "Slice" => [Slice(node, x)],
            "Gather" => [Gather(node, x, In(1))],
            "Expand" => [Expand(node, x, In(1))],
            "ConstantOfShape" => [ConstantOfShape(node, x)],
            "Resize" => [Resize(node, x)],
            "ArgMax" or "ArgMin" => [ArgReduce(node, x)],
            "Range" => [[Unknown]],
            "Tile" => [Tile(node, x)],
            "Split" => Split(node, x),
            _ => [],
        };
    }

    /// <summary>ONNX's multidirectional broadcasting with unknown dimensions.</summary>
    private static long[] Broadcast(IReadOnlyList<long[]> shapes)
    {
        var rank = shapes.Max(s => s.Length);
        var result = new long[rank];
        for (var i = 0; i < rank; i++)
        {
            long value = 1;
            var unknowns = 0;
            foreach (var shape in shapes)
            {
                var j = i - rank + shape.Length;
                if (j < 0) continue;
                var dim = shape[j];
                if (dim == Unknown) unknowns = 1;
                else if (dim != 1)
                {
                    if (value != 1 && value != dim) throw new ArgumentException($"dimensions {value} and {dim} do not broadcast");
                    value = dim;
                }
            }
            result[i] = value != 1 || unknowns == 0 ? value : Unknown;
        }
        return result;
    }

    private static long[]? MatMul(long[]? a, long[]? b)
    {
        if (a is not { Length: > 0 } || b is not { Length: > 0 }) return null;
        var left = a.Length == 1 ? [1, a[0]] : a;
        var right = b.Length == 1 ? [b[0], 1] : b;
        var batch = Broadcast([left[..^2], right[..^2]]);
        var result = batch.ToList();
        if (a.Length != 1) result.Add(left[^2]);
        if (b.Length != 1) result.Add(right[^1]);
        return result.ToArray();
    }

    private static long[]? Gemm(GraphNode node, long[]? a, long[]? b)
    {
        if (a is not { Length: 2 } || b is not { Length: 2 }) return null;
        return [a[node.Attributes.GetInt("transA", 0) != 0 ? 1 : 0], b[node.Attributes.GetInt("transB", 0) != 0 ? 0 : 1]];
    }

    private static long[]? Transpose(GraphNode node, long[]? x)
    {
        if (x is null) return null;
        var perm = node.Attributes.GetInts("perm") ?? Enumerable.Range(0, x.Length).Reverse().Select(i => (long)i).ToArray();
        return perm.Select(p => x[p]).ToArray();
    }

    /// <summary>ONNX's convPoolShapeInference: batch, channels (the kernel's output channels for Conv), spatial sizes.</summary>
    private static long[]? ConvPool(GraphNode node, long[]? x, long[]? weight)
    {
        if (x is not { Length: >= 2 }) return null;
        if (node.OpType == "Conv" && weight is null) return null;
        var spatial = x.Length - 2;
        var kernel = node.Attributes.GetInts("kernel_shape") ?? weight?[2..];
        if (kernel is null || kernel.Length != spatial || kernel.Any(k => k == Unknown)) return null;
        var strides = node.Attributes.GetInts("strides") ?? Enumerable.Repeat(1L, spatial).ToArray();
        var dilations = node.Attributes.GetInts("dilations") ?? Enumerable.Repeat(1L, spatial).ToArray();
        var pads = node.Attributes.GetInts("pads") ?? new long[spatial * 2];
        var autoPad = node.Attributes.GetString("auto_pad", "NOTSET");
        var ceil = node.Attributes.GetInt("ceil_mode", 0) != 0;
        var result = new long[x.Length];
        result[0] = x[0];
        result[1] = weight is not null ? weight[0] : x[1];
        for (var i = 0; i < spatial; i++)
        {
            var size = x[i + 2];
            if (size == Unknown)
            {
                result[i + 2] = Unknown;
                continue;
            }
            var effectiveKernel = (kernel[i] - 1) * dilations[i] + 1;
            if (autoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                result[i + 2] = (size + strides[i] - 1) / strides[i];
                continue;
            }
            var padded = size + (autoPad == "VALID" ? 0 : pads[i] + pads[i + spatial]);
            var span = padded - effectiveKernel;
            result[i + 2] = (ceil ? (long)Math.Ceiling(span / (double)strides[i]) : span / strides[i]) + 1;
        }
        return result;
    }

    private static long ShapeLength(GraphNode node, long[]? x)
    {
        if (x is null) return Unknown;
        long Clamp(long axis) => Math.Clamp(axis < 0 ? axis + x.Length : axis, 0, x.Length);
        var start = Clamp(node.Attributes.GetInt("start", 0));
        var end = Clamp(node.Attributes.GetInt("end", x.Length));
        return Math.Max(0, end - start);
    }

    private static long[]? Reshape(GraphNode node, long[]? x)
    {
        if (Ints(node, 1) is not { } target) return null;
        var allowZero = node.Attributes.GetInt("allowzero", 0) != 0;
        var result = new long[target.Length];
        var minusOne = -1;
        long product = 1;
        var productKnown = true;
        for (var i = 0; i < target.Length; i++)
        {
            var value = target[i];
            if (value == -1)
            {
                minusOne = i;
                result[i] = Unknown;
                continue;
            }
            result[i] = value == 0 && !allowZero ? x is not null && i < x.Length ? x[i] : Unknown : value;
            if (result[i] == Unknown) productKnown = false;
            else product *= result[i];
        }
        if (minusOne >= 0 && productKnown && x is not null && x.All(d => d != Unknown) && product != 0)
            result[minusOne] = x.Aggregate(1L, (a, d) => a * d) / product;
        return result;
    }

    private static long[]? Flatten(GraphNode node, long[]? x)
    {
        if (x is null) return null;
        var axis = node.Attributes.GetInt("axis", 1);
        if (axis < 0) axis += x.Length;
        long Product(IEnumerable<long> dims) => dims.Any(d => d == Unknown) ? Unknown : dims.Aggregate(1L, (a, d) => a * d);
        return [Product(x.Take((int)axis)), Product(x.Skip((int)axis))];
    }

    private static long[]? Unsqueeze(GraphNode node, long[]? x)
    {
        if (x is null || (node.Attributes.GetInts("axes") ?? Ints(node, 1)) is not { } axes) return null;
        var rank = x.Length + axes.Length;
        var normalized = axes.Select(a => a < 0 ? a + rank : a).ToHashSet();
        var result = new long[rank];
        for (int i = 0, j = 0; i < rank; i++) result[i] = normalized.Contains(i) ? 1 : x[j++];
        return result;
    }

    private static long[]? Squeeze(GraphNode node, long[]? x)
    {
        if (x is null) return null;
        var axes = node.Attributes.GetInts("axes") ?? Ints(node, 1);
        if (axes is null)
        {
            if (node.Inputs.Length > 1 && node.Inputs[1] is not null) return null;
            if (x.Any(d => d == Unknown)) return null;
            return x.Where(d => d != 1).ToArray();
        }
        var normalized = axes.Select(a => a < 0 ? a + x.Length : a).ToHashSet();
        return x.Where((_, i) => !normalized.Contains(i)).ToArray();
    }

    private static long[]? Concat(GraphNode node, long[]?[] inputs)
    {
        var present = inputs.Where((_, i) => node.Inputs[i] is not null).ToArray();
        if (present.Length == 0 || present.Any(s => s is null)) return null;
        var rank = present[0]!.Length;
        var axis = node.Attributes.GetInt("axis", 0);
        if (axis < 0) axis += rank;
        var result = (long[])present[0]!.Clone();
        long total = 0;
        var totalKnown = true;
        foreach (var shape in present)
        {
            for (var j = 0; j < rank; j++)
            {
                if (j == axis)
                {
                    if (shape![j] == Unknown) totalKnown = false;
                    else total += shape[j];
                }
                else if (shape![j] != Unknown) result[j] = shape[j];
            }
        }
        result[axis] = totalKnown ? total : Unknown;
        return result;
    }

    private static long[]? Slice(GraphNode node, long[]? x)
    {
        if (x is null) return null;
        long[]? starts, ends, axes = null, steps = null;
        if (node.Attributes.GetInts("starts") is { } startsAttribute) // opset < 10
        {
            starts = startsAttribute;
            ends = node.Attributes.GetInts("ends");
            axes = node.Attributes.GetInts("axes");
        }
        else
        {
            starts = Ints(node, 1);
            ends = Ints(node, 2);
            var hasAxes = node.Inputs.Length > 3 && node.Inputs[3] is not null;
            var hasSteps = node.Inputs.Length > 4 && node.Inputs[4] is not null;
            if (hasAxes) axes = Ints(node, 3);
            if (hasSteps) steps = Ints(node, 4);
            if ((hasAxes && axes is null) || (hasSteps && steps is null)) return null;
        }
        if (starts is null || ends is null) return null; // computed bounds: ONNX gives no shape, not even the rank
        axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        steps ??= Enumerable.Repeat(1L, starts.Length).ToArray();
        var result = (long[])x.Clone();
        for (var i = 0; i < axes.Length; i++)
        {
            var axis = (int)(axes[i] < 0 ? axes[i] + x.Length : axes[i]);
            var size = x[axis];
            if (size == Unknown)
            {
                result[axis] = Unknown;
                continue;
            }
            var step = steps[i];
            long start = starts[i], end = ends[i];
            if (start < 0) start += size;
            if (end < 0) end += size;
            if (step < 0)
            {
                start = Math.Clamp(start, 0, size - 1);
                end = Math.Clamp(end, -1, size - 1);
            }
            else
            {
                start = Math.Clamp(start, 0, size);
                end = Math.Clamp(end, 0, size);
            }
            result[axis] = Math.Max(0, (long)Math.Ceiling((end - start) / (double)step));
        }
        return result;
    }

    private static long[]? Gather(GraphNode node, long[]? data, long[]? indices)
    {
        if (data is null || indices is null) return null;
        var axis = node.Attributes.GetInt("axis", 0);
        if (axis < 0) axis += data.Length;
        return [.. data[..(int)axis], .. indices, .. data[((int)axis + 1)..]];
    }

    private static long[]? Expand(GraphNode node, long[]? x, long[]? shapeShape)
    {
        if (x is null || shapeShape is not { Length: 1 }) return null;
        var target = Ints(node, 1)
            ?? (shapeShape[0] == Unknown ? null : Enumerable.Repeat(Unknown, (int)shapeShape[0]).ToArray());
        return target is null ? null : Broadcast([x, target]);
    }

    private static long[]? ConstantOfShape(GraphNode node, long[]? shapeShape) =>
        Ints(node, 0) ?? (shapeShape is [var length] && length != Unknown ? Enumerable.Repeat(Unknown, (int)length).ToArray() : null);

    private static long[]? Resize(GraphNode node, long[]? x)
    {
        if (x is null) return null;
        var result = Enumerable.Repeat(Unknown, x.Length).ToArray();
        if (node.Inputs.Length > 3 && Ints(node, 3) is { } sizes && sizes.Length == x.Length) return sizes;
        if (node.Inputs.Length > 2 && Floats(node, 2) is { } scales && scales.Length == x.Length)
            for (var i = 0; i < x.Length; i++)
                if (x[i] != Unknown) result[i] = (long)Math.Floor(x[i] * scales[i]);
        return result;
    }

    private static long[]? Reduce(GraphNode node, long[]? x)
    {
        if (x is null) return null;
        var keepDims = node.Attributes.GetInt("keepdims", 1) != 0;
        var axes = node.Attributes.GetInts("axes") ?? (node.Inputs.Length > 1 && node.Inputs[1] is not null ? Ints(node, 1) : []);
        if (axes is null) return null;
        var reduced = axes.Select(a => a < 0 ? a + x.Length : a).ToHashSet();
        var result = new List<long>();
        for (var i = 0; i < x.Length; i++)
        {
            if (reduced.Count == 0 || reduced.Contains(i))
            {
                if (keepDims) result.Add(1);
            }
            else result.Add(x[i]);
        }
        return result.ToArray();
    }

    private static long[]? ArgReduce(GraphNode node, long[]? x)
    {
        if (x is null) return null;
        var axis = node.Attributes.GetInt("axis", 0);
        if (axis < 0) axis += x.Length;
        var keepDims = node.Attributes.GetInt("keepdims", 1) != 0;
        return x.Select((d, i) => (d, i)).Where(p => p.i != axis || keepDims).Select(p => p.i == axis ? 1 : p.d).ToArray();
    }

    private static long[]? Tile(GraphNode node, long[]? x)
    {
        if (x is null) return null;
        if (Ints(node, 1) is not { } repeats || repeats.Length != x.Length) return Enumerable.Repeat(Unknown, x.Length).ToArray();
        return x.Select((d, i) => d == Unknown ? Unknown : d * repeats[i]).ToArray();
    }

    private static long[]?[] Split(GraphNode node, long[]? x)
    {
        if (x is null) return [];
        var axis = node.Attributes.GetInt("axis", 0);
        if (axis < 0) axis += x.Length;
        var count = node.Outputs.Length;
        var split = node.Attributes.GetInts("split") ?? (node.Inputs.Length > 1 && node.Inputs[1] is not null ? Ints(node, 1) : null);
        if (split is null)
        {
            if (x[axis] == Unknown || x[axis] % count != 0) return [];
            split = Enumerable.Repeat(x[axis] / count, count).ToArray();
        }
        return split.Select(s =>
        {
            var shape = (long[])x.Clone();
            shape[axis] = s;
            return (long[]?)shape;
        }).ToArray();
    }

    /// <summary>The values of an integer constant input (ONNX's getInputData), or null when the input is not a constant.</summary>
    private static long[]? Ints(GraphNode node, int index)
    {
        if (index >= node.Inputs.Length || node.Inputs[index] is not { IsWeight: true } weight) return null;
        if (weight.Location!.Inline is null && weight.Location.Length > WeightLocation.MaxInlineBytes) return null;
        var bytes = WeightBytes.Read(weight, node.ToString());
        return weight.WeightType switch
        {
            ElementType.Int64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
            ElementType.Int32 => MemoryMarshal.Cast<byte, int>(bytes).ToArray().Select(v => (long)v).ToArray(),
            _ => null,
        };
    }

    private static double[]? Floats(GraphNode node, int index)
    {
        if (index >= node.Inputs.Length || node.Inputs[index] is not { IsWeight: true, WeightType: ElementType.Float32 } weight) return null;
        if (weight.Location!.Inline is null && weight.Location.Length > WeightLocation.MaxInlineBytes) return null;
        return MemoryMarshal.Cast<byte, float>(WeightBytes.Read(weight, node.ToString())).ToArray().Select(v => (double)v).ToArray();
    }
}
