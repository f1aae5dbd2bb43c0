using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX LayerNormalization (opset 17): X is normalized over its dimensions from <c>axis</c> (default -1)
/// on, y = (x − mean) / sqrt(var + epsilon) · Scale + B (biased variance, epsilon default 1e-5; B
/// optional). Scale and B broadcast (numpy-style, towards X) to the normalized shape X.shape[axis:].
/// Optional outputs Mean and InvStdDev have X's shape with the dimensions from <c>axis</c> set to 1, and
/// are float32: only stash_type 1 (float32, the default) is supported. float32, and float16 through
/// float32; Scale and B may be either. Statistics are float32 values summed in double blocks.
/// </summary>
internal sealed unsafe class LayerNormalizationOperator : IOperator
{
    /// <summary>Normalizations smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var scale = context.Input(1);
        var bias = context.OptionalInput(2);
        var shape = InferShape(context, x, scale, bias, out var axis, out var statisticsShape);
        var output = context.Output(0, x.ElementType, shape);
        var mean = context.OutputCount > 1 ? context.Output(1, ElementType.Float32, statisticsShape) : null;
        var invStdDev = context.OutputCount > 2 ? context.Output(2, ElementType.Float32, statisticsShape) : null;
        var rows = AxisHelper.Product(shape, 0, axis);
        var length = (int)AxisHelper.Product(shape, axis, shape.Length);
        if (rows == 0) return;

        var epsilon = context.Attributes.GetFloat("epsilon", 1e-5f);
        var scratch = new List<Tensor>();
        try
        {
            var scaleValues = Expand(context, scale, shape.AsSpan(axis), scratch);
            var biasValues = bias is null ? null : Expand(context, bias, shape.AsSpan(axis), scratch);
            // float32 reads X and writes Y; float16 widens X into a scratch copy and works in place there.
            var xf = Layout.ToFloat32(context, x, "X", out var ownsX);
            if (ownsX) scratch.Add(xf);
            var source = (nint)AxisHelper.Data(xf);
            var destination = ownsX ? source : (nint)AxisHelper.Data(output);
            var scalePointer = (nint)AxisHelper.Data(scaleValues);
            var biasPointer = biasValues is null ? 0 : (nint)AxisHelper.Data(biasValues);
            var meanPointer = mean is null ? 0 : (nint)AxisHelper.Data(mean);
            var invStdPointer = invStdDev is null ? 0 : (nint)AxisHelper.Data(invStdDev);

            void Rows(long start, long end)
            {
                var gamma = new ReadOnlySpan<float>((float*)scalePointer, length);
                var beta = new ReadOnlySpan<float>((float*)biasPointer, biasPointer == 0 ? 0 : length);
                for (var row = start; row < end; row++)
                {
                    var src = new ReadOnlySpan<float>((float*)source + row * length, length);
                    var dst = new Span<float>((float*)destination + row * length, length);
                    var average = (float)(GroupNormalizationOperator.Sum(src) / length);
                    TensorPrimitives.Subtract(src, average, dst);
                    var inverse = (float)(1 / Math.Sqrt(GroupNormalizationOperator.SumOfSquares(dst) / length + epsilon));
                    TensorPrimitives.Multiply(dst, inverse, dst);
                    if (biasPointer == 0) TensorPrimitives.Multiply(dst, gamma, dst);
                    else TensorPrimitives.MultiplyAdd(dst, gamma, beta, dst);
                    if (meanPointer != 0) ((float*)meanPointer)[row] = average;
                    if (invStdPointer != 0) ((float*)invStdPointer)[row] = inverse;
                }
            }

            if (x.ElementCount < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism <= 1 || rows == 1)
                Rows(0, rows);
            else
            {
                var chunks = (int)Math.Min(rows, context.Parallel.MaxDegreeOfParallelism * 4L);
                Parallel.For(0, chunks, context.Parallel, chunk => Rows(rows * chunk / chunks, rows * (chunk + 1) / chunks));
            }
            if (ownsX) Layout.FromFloat32(context, xf, output);
        }
        finally
        {
            foreach (var tensor in scratch) tensor.Dispose();
        }
    }

    /// <summary>
    /// Checks the inputs and attributes. Returns Y's shape (X's); <paramref name="statisticsShape"/> is the
    /// shape of Mean and InvStdDev, and <paramref name="axis"/> the normalized axis.
    /// </summary>
    internal static int[] InferShape(OperatorContext context, Tensor x, Tensor scale, Tensor? bias, out int axis, out int[] statisticsShape)
    {
        GroupNormalizationOperator.CheckFloat(context, x, "X");
        if (x.Shape.Length == 0) throw context.Error("X must have rank 1 or more, not be a scalar");
        if (context.OutputCount > 3) throw context.Error($"has {context.OutputCount} outputs; LayerNormalization has at most 3 (Y, Mean, InvStdDev)");
        var stashType = context.Attributes.GetInt("stash_type", 1);
        if (stashType != 1) throw context.Error($"stash_type {stashType} is not supported; only 1 (float32)");
        axis = AxisHelper.NormalizeAxis(context, context.Attributes.GetInt("axis", -1), x.Shape.Length);
        var normalized = x.Shape.AsSpan(axis);
        // The statistics of an empty set are undefined (ORT rejects it too).
        if (AxisHelper.Product(normalized, 0, normalized.Length) == 0)
            throw context.Error($"the normalized shape X.shape[{axis}:] = {AxisHelper.Format(normalized)} of X {AxisHelper.Format(x.Shape)} has no elements");
        CheckBroadcast(context, scale, "Scale", normalized, x);
        if (bias is not null) CheckBroadcast(context, bias, "B", normalized, x);
        statisticsShape = (int[])x.Shape.Clone();
        for (var k = axis; k < statisticsShape.Length; k++) statisticsShape[k] = 1;
        return (int[])x.Shape.Clone();
    }

    /// <summary>Throws unless <paramref name="tensor"/> broadcasts to <paramref name="normalized"/> (one-way, numpy rules).</summary>
    private static void CheckBroadcast(OperatorContext context, Tensor tensor, string name, ReadOnlySpan<int> normalized, Tensor x)
    {
        GroupNormalizationOperator.CheckFloat(context, tensor, name);
        var shape = tensor.Shape;
        var fits = shape.Length <= normalized.Length;
        for (var k = 1; fits && k <= shape.Length; k++)
            fits = shape[^k] == 1 || shape[^k] == normalized[^k];
        if (!fits)
            throw context.Error($"{name} {AxisHelper.Format(shape)} does not broadcast to the normalized shape {AxisHelper.Format(normalized)} of X {AxisHelper.Format(x.Shape)}");
    }

    /// <summary>
    /// <paramref name="tensor"/> as float32 values of the full normalized shape: the tensor itself when it
    /// already is that, else a scratch tensor (added to <paramref name="scratch"/>).
    /// </summary>
    private static Tensor Expand(OperatorContext context, Tensor tensor, ReadOnlySpan<int> normalized, List<Tensor> scratch)
    {
        var values = Layout.ToFloat32(context, tensor, "Scale and B", out var owned);
        if (owned) scratch.Add(values);
        var length = AxisHelper.Product(normalized, 0, normalized.Length);
        if (values.ElementCount == length) return values;

        var expanded = context.Scratch(ElementType.Float32, [(int)length]);
        scratch.Add(expanded);
        // Source strides over the normalized dimensions (0 where the tensor broadcasts).
        var rank = normalized.Length;
        var sourceStrides = new long[rank];
        long stride = 1;
        for (var k = 1; k <= tensor.Shape.Length; k++)
        {
            if (tensor.Shape[^k] != 1) sourceStrides[rank - k] = stride;
            stride *= tensor.Shape[^k];
        }
        var src = values.Span<float>();
        var dst = expanded.Span<float>();
        var index = new int[rank];
        long offset = 0;
        for (var i = 0; i < dst.Length; i++)
        {
            dst[i] = src[(int)offset];
            // Odometer over the normalized dimensions, innermost last.
            for (var k = rank - 1; k >= 0; k--)
            {
                offset += sourceStrides[k];
                if (++index[k] < normalized[k]) break;
                offset -= sourceStrides[k] * normalized[k];
                index[k] = 0;
            }
        }
        return expanded;
    }
}
