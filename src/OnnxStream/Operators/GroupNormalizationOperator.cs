using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX GroupNormalization: X [N,C,...] (rank 2 or more) split into <c>num_groups</c> groups of C/num_groups
/// channels; each (n, group) is normalized over its channels and spatial positions together,
/// y = (x − mean) / sqrt(var + epsilon) (biased variance, epsilon default 1e-5), then scaled and shifted.
/// scale and bias are 1-D and may each be per group ([num_groups], opset 18) or per channel ([C],
/// opset 21); when num_groups = C the two agree. model.txt does not record the opset, so the length
/// decides. opset 21's stash_type is accepted and ignored: statistics are always float32 values summed
/// in double blocks. float32, and float16 through float32 (like ORT). Also the engine of
/// <see cref="InstanceNormalizationOperator"/> (groups of one channel).
/// </summary>
internal sealed unsafe class GroupNormalizationOperator : IOperator
{
    /// <summary>Normalizations smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <summary>Elements summed by one SIMD reduction before the partial sum joins a double total.</summary>
    private const int SumBlock = 4096;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var scale = context.Input(1);
        var bias = context.Input(2);
        var shape = InferShape(context, x, scale, bias, out var groups);
        var output = context.Output(0, x.ElementType, shape);
        if (output.ElementCount == 0) return;
        var epsilon = context.Attributes.GetFloat("epsilon", 1e-5f);
        Normalize(context, x, output, groups, ChannelValues(context, scale, "scale", shape[1], groups),
            ChannelValues(context, bias, "bias", shape[1], groups), epsilon);
    }

    /// <summary>Checks the inputs and <c>num_groups</c>; the output has X's shape.</summary>
    internal static int[] InferShape(OperatorContext context, Tensor x, Tensor scale, Tensor bias, out int groups)
    {
        CheckFloat(context, x, "X");
        if (x.Shape.Length < 2) throw context.Error($"X must be [N,C,...] (rank 2 or more), not {x}");
        var channels = x.Shape[1];
        if (!context.Attributes.Has("num_groups")) throw context.Error("attribute num_groups is required");
        var numGroups = context.Attributes.GetInt("num_groups", 0);
        if (numGroups < 1 || numGroups > int.MaxValue)
            throw context.Error($"num_groups must be positive, not {numGroups}");
        groups = (int)numGroups;
        if (channels % groups != 0)
            throw context.Error($"the {channels} channels of X {AxisHelper.Format(x.Shape)} do not split into num_groups={groups} groups");
        foreach (var (tensor, name) in new[] { (scale, "scale"), (bias, "bias") })
        {
            CheckFloat(context, tensor, name);
            if (tensor.Shape.Length != 1 || (tensor.Shape[0] != channels && tensor.Shape[0] != groups))
                throw context.Error($"{name} must be [num_groups]=[{groups}] or [C]=[{channels}] for X {AxisHelper.Format(x.Shape)}, not {AxisHelper.Format(tensor.Shape)}");
        }
        return (int[])x.Shape.Clone();
    }

    /// <summary>Throws unless <paramref name="tensor"/> is float32 or float16.</summary>
    internal static void CheckFloat(OperatorContext context, Tensor tensor, string name)
    {
        if (tensor.ElementType is not (ElementType.Float32 or ElementType.Float16))
            throw context.Error($"{name} must be float32 or float16, not {tensor.ElementType}");
    }

    /// <summary>A per-group or per-channel 1-D tensor as one float per channel (a small managed array).</summary>
    internal static float[] ChannelValues(OperatorContext context, Tensor tensor, string name, int channels, int groups)
    {
        var values = new float[tensor.ElementCount];
        if (tensor.ElementType == ElementType.Float32) tensor.Span<float>().CopyTo(values);
        else TensorPrimitives.ConvertToSingle(tensor.Span<Half>(), values);
        if (values.Length == channels) return values;
        if (values.Length != groups) throw context.Error($"{name} has {values.Length} values; {channels} or {groups} expected");
        var perChannel = new float[channels];
        var groupChannels = channels / groups;
        for (var c = 0; c < channels; c++) perChannel[c] = values[c / groupChannels];
        return perChannel;
    }

    /// <summary>
    /// Normalizes X [N,C,...] into <paramref name="output"/> (which may be X itself) over groups of C/<paramref name="groups"/>
    /// consecutive channels and all spatial positions, then y = normalized·scale[c] + bias[c], then with
    /// <paramref name="silu"/> y·sigmoid(y).
    /// </summary>
    internal static void Normalize(OperatorContext context, Tensor x, Tensor output, int groups, float[] scale, float[] bias, float epsilon,
        bool silu = false)
    {
        var batch = x.Shape[0];
        var channels = x.Shape[1];
        var spatial = (int)AxisHelper.Product(x.Shape, 2, x.Shape.Length);
        var groupChannels = channels / groups;
        // float32 reads X and writes the output; float16 widens X into a scratch copy and works in place there.
        var xf = Layout.ToFloat32(context, x, "X", out var ownsX);
        try
        {
            var source = (nint)AxisHelper.Data(xf);
            var destination = ownsX ? source : (nint)AxisHelper.Data(output);
            var length = groupChannels * spatial;
            var items = (long)batch * groups;

            void Groups(long start, long end)
            {
                for (var item = start; item < end; item++)
                {
                    var offset = item * length;
                    var src = new ReadOnlySpan<float>((float*)source + offset, length);
                    var dst = new Span<float>((float*)destination + offset, length);
                    var mean = (float)(Sum(src) / length);
                    TensorPrimitives.Subtract(src, mean, dst);
                    var invStd = (float)(1 / Math.Sqrt(SumOfSquares(dst) / length + epsilon));
                    var c0 = (int)(item % groups) * groupChannels;
                    for (var c = 0; c < groupChannels; c++)
                    {
                        var plane = dst.Slice(c * spatial, spatial);
                        TensorPrimitives.Multiply(plane, invStd * scale[c0 + c], plane);
                        TensorPrimitives.Add(plane, bias[c0 + c], plane);
                        if (silu) Silu(plane);
                    }
                }
            }

            if (x.ElementCount < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism <= 1 || items == 1)
                Groups(0, items);
            else
            {
                var chunks = (int)Math.Min(items, context.Parallel.MaxDegreeOfParallelism * 4L);
                Parallel.For(0, chunks, context.Parallel, chunk => Groups(items * chunk / chunks, items * (chunk + 1) / chunks));
            }
            if (ownsX) Layout.FromFloat32(context, xf, output);
        }
        finally
        {
            if (ownsX) xf.Dispose();
        }
    }

    /// <summary>values·sigmoid(values) in place, through a small stack buffer.</summary>
    private static void Silu(Span<float> values)
    {
        Span<float> sigmoid = stackalloc float[1024];
        for (var i = 0; i < values.Length; i += sigmoid.Length)
        {
            var chunk = values.Slice(i, Math.Min(sigmoid.Length, values.Length - i));
            var gate = sigmoid[..chunk.Length];
            TensorPrimitives.Sigmoid(chunk, gate);
            TensorPrimitives.Multiply(chunk, gate, chunk);
        }
    }

    /// <summary>Σ values: SIMD sums of <see cref="SumBlock"/> elements added up in double.</summary>
    internal static double Sum(ReadOnlySpan<float> values)
    {
        double total = 0;
        for (var i = 0; i < values.Length; i += SumBlock)
            total += TensorPrimitives.Sum(values.Slice(i, Math.Min(SumBlock, values.Length - i)));
        return total;
    }

    /// <summary>Σ values²: SIMD sums of <see cref="SumBlock"/> elements added up in double.</summary>
    internal static double SumOfSquares(ReadOnlySpan<float> values)
    {
        double total = 0;
        for (var i = 0; i < values.Length; i += SumBlock)
            total += TensorPrimitives.SumOfSquares(values.Slice(i, Math.Min(SumBlock, values.Length - i)));
        return total;
    }
}
