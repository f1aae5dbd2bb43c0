using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Resize (opset 11+ inputs X, roi, scales, sizes; the opset-10 form X, scales is accepted too, with
/// opset 10's fixed asymmetric coordinates and, as ONNX Runtime, nearest = floor upscaling, ceil downscaling) in
/// managed code over row-major data of any rank. Modes: nearest (any element type; quantized uint8 keeps
/// its quantization) and linear (n-linear over every resized axis; float32, float16 through float32).
/// Coordinate transformations: half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners,
/// asymmetric, tf_half_pixel_for_nearest. Opset-18 axes and keep_aspect_ratio_policy are supported.
/// Not supported: mode cubic, tf_crop_and_resize (so roi is ignored), antialias.
/// Coordinates are computed in float32 the way ONNX Runtime computes them, so that nearest picks the same pixels.
/// </summary>
internal sealed class ResizeOperator : IOperator
{
    /// <summary>Outputs smaller than this many elements are computed on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var plan = InferShape(context, x);
        var output = context.Output(0, x.ElementType, plan.OutputShape, x.Quantization);
        if (output.ElementCount == 0) return;

        var rank = x.Shape.Length;
        var axes = new AxisMap[rank];
        for (var i = 0; i < rank; i++)
            axes[i] = plan.Linear
                ? LinearAxis(x.Shape[i], plan.OutputShape[i], plan.Scales[i], plan.Transform)
                : NearestAxis(x.Shape[i], plan.OutputShape[i], plan.Scales[i], plan.Transform, plan.NearestMode);

        if (!plan.Linear)
        {
            switch (x.ElementType.Size())
            {
                case 1: Nearest<byte>(context, x, output, axes); break;
                case 2: Nearest<ushort>(context, x, output, axes); break;
                case 4: Nearest<uint>(context, x, output, axes); break;
                default: Nearest<ulong>(context, x, output, axes); break;
            }
            return;
        }
        if (x.ElementType == ElementType.Float32)
        {
            Linear(context, x, output, axes);
            return;
        }
        var xf = Layout.ToFloat32(context, x, "X", out var ownsX);
        try
        {
            using var result = context.Scratch(ElementType.Float32, output.Shape);
            Linear(context, xf, result, axes);
            Layout.FromFloat32(context, result, output);
        }
        finally
        {
            if (ownsX) xf.Dispose();
        }
    }

    /// <summary>How the output indices of one axis map to input indices: First (and, for linear, Second) with weights.</summary>
    private sealed class AxisMap
    {
        public required int[] First;
        public int[]? Second;
        public float[]? FirstWeight;
        public float[]? SecondWeight;

        /// <summary>True when output index i reads exactly input index i.</summary>
        public bool Identity;
    }

    private static AxisMap NearestAxis(int input, int output, float scale, string transform, string nearestMode)
    {
        var first = new int[output];
        var identity = input == output;
        for (var i = 0; i < output; i++)
        {
            var original = OriginalCoordinate(transform, i, scale, output, input);
            long index = nearestMode switch
            {
                "round_prefer_floor" => original == (long)original + 0.5f ? (long)MathF.Floor(original) : (long)MathF.Round(original, MidpointRounding.AwayFromZero),
                "round_prefer_ceil" => (long)MathF.Round(original, MidpointRounding.AwayFromZero),
                "floor" => (long)MathF.Floor(original),
                "ceil" => (long)MathF.Ceiling(original),
                _ => scale < 1 ? (long)MathF.Ceiling(original) : (long)original, // opset 10 ("simple" in ONNX Runtime)
            };
            first[i] = (int)Math.Clamp(index, 0, input - 1);
            identity &= first[i] == i;
        }
        return new AxisMap { First = first, Identity = identity };
    }

    private static AxisMap LinearAxis(int input, int output, float scale, string transform)
    {
        var first = new int[output];
        var second = new int[output];
        var firstWeight = new float[output];
        var secondWeight = new float[output];
        var identity = input == output;
        for (var i = 0; i < output; i++)
        {
            var original = OriginalCoordinate(transform, i, scale, output, input);
            original = Math.Max(0f, Math.Min(original, input - 1));
            var i1 = Math.Min((int)original, input - 1);
            var i2 = Math.Min(i1 + 1, input - 1);
            // As ONNX Runtime: the weight of i1 is the distance to i2 and vice versa; 0.5 each when they coincide.
            var d1 = MathF.Abs(original - i1);
            var d2 = MathF.Abs(original - i2);
            if (i1 == i2) d1 = d2 = 0.5f;
            (first[i], second[i], firstWeight[i], secondWeight[i]) = (i1, i2, d2, d1);
            identity &= (i1 == i && d2 == 1f && d1 == 0f) || (i1 == i && i2 == i);
        }
        return new AxisMap { First = first, Second = second, FirstWeight = firstWeight, SecondWeight = secondWeight, Identity = identity };
    }

    /// <summary>The input coordinate of output coordinate <paramref name="x"/> (ONNX Runtime's float32 formulas).</summary>
    private static float OriginalCoordinate(string transform, int x, float scale, int output, int input)
    {
        float resized = x;
        return transform switch
        {
            "asymmetric" => resized / scale,
            "pytorch_half_pixel" => output > 1 ? (resized + 0.5f) / scale - 0.5f : 0f,
            "tf_half_pixel_for_nearest" => (resized + 0.5f) / scale,
            "align_corners" => output == 1 ? 0f : resized * (input - 1) / (output - 1),
            "half_pixel_symmetric" => HalfPixelSymmetric(resized, scale, output, input),
            _ => (resized + 0.5f) / scale - 0.5f, // half_pixel
        };

        static float HalfPixelSymmetric(float resized, float scale, int output, int input)
        {
            var outputWidth = scale * input;
            var adjustment = output / outputWidth;
            var center = input / 2f;
            var offset = center * (1 - adjustment);
            return offset + (resized + 0.5f) / scale - 0.5f;
        }
    }

    /// <summary>Rows (all output dimensions but the last) split into chunks, run in parallel when large.</summary>
    private static void ForRows(OperatorContext context, long rows, long rowLength, Action<long, long> body)
    {
        if (rows * rowLength < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism == 1 || rows == 1)
        {
            body(0, rows);
            return;
        }
        var chunks = (int)Math.Min(rows, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk => body(rows * chunk / chunks, rows * (chunk + 1) / chunks));
    }

    private static unsafe void Nearest<T>(OperatorContext context, Tensor x, Tensor y, AxisMap[] axes) where T : unmanaged
    {
        var rank = x.Shape.Length;
        var inStrides = AxisHelper.Strides(x.Shape);
        var outShape = y.Shape;
        var width = outShape[^1];
        var last = axes[^1];
        var rows = AxisHelper.Product(outShape, 0, rank - 1);
        var src = (nint)AxisHelper.Data(x);
        var dst = (nint)AxisHelper.Data(y);
        ForRows(context, rows, width, (start, end) =>
        {
            var s = (T*)src;
            var d = (T*)dst;
            var index = new int[rank];
            long previous = -1;
            for (var row = start; row < end; row++)
            {
                // The input row this output row reads.
                long offset = 0, rest = row;
                for (var k = rank - 2; k >= 0; k--)
                {
                    index[k] = (int)(rest % outShape[k]);
                    rest /= outShape[k];
                    offset += axes[k].First[index[k]] * inStrides[k];
                }
                var output = d + row * width;
                if (offset == previous)
                {
                    // Same source row as the row before (an upsampled row): copy it.
                    Buffer.MemoryCopy(output - width, output, (long)width * sizeof(T), (long)width * sizeof(T));
                    continue;
                }
                previous = offset;
                var input = s + offset;
                if (last.Identity)
                    Buffer.MemoryCopy(input, output, (long)width * sizeof(T), (long)width * sizeof(T));
                else
                {
                    var map = last.First;
                    for (var i = 0; i < width; i++) output[i] = input[map[i]];
                }
            }
        });
    }

    private static unsafe void Linear(OperatorContext context, Tensor x, Tensor y, AxisMap[] axes)
    {
        var rank = x.Shape.Length;
        var inStrides = AxisHelper.Strides(x.Shape);
        var outShape = y.Shape;
        var width = outShape[^1];
        var last = axes[^1];
        var rows = AxisHelper.Product(outShape, 0, rank - 1);
        // The outer axes that interpolate: each doubles the input rows an output row blends.
        var active = Enumerable.Range(0, rank - 1).Where(k => !axes[k].Identity).ToArray();
        var combinations = 1 << active.Length;
        var src = (nint)AxisHelper.Data(x);
        var dst = (nint)AxisHelper.Data(y);
        ForRows(context, rows, width, (start, end) =>
        {
            var s = (float*)src;
            var d = (float*)dst;
            var index = new int[rank];
            var offsets = new long[combinations];
            var weights = new float[combinations];
            for (var row = start; row < end; row++)
            {
                long offset = 0, rest = row;
                for (var k = rank - 2; k >= 0; k--)
                {
                    index[k] = (int)(rest % outShape[k]);
                    rest /= outShape[k];
                    if (axes[k].Identity) offset += index[k] * inStrides[k];
                }
                offsets[0] = offset;
                weights[0] = 1f;
                var count = 1;
                foreach (var k in active)
                {
                    var map = axes[k];
                    var o = index[k];
                    for (var c = 0; c < count; c++)
                    {
                        offsets[c + count] = offsets[c] + map.Second![o] * inStrides[k];
                        weights[c + count] = weights[c] * map.SecondWeight![o];
                        offsets[c] += map.First[o] * inStrides[k];
                        weights[c] *= map.FirstWeight![o];
                    }
                    count *= 2;
                }

                var output = d + row * width;
                if (last.Identity)
                {
                    var input = s + offsets[0];
                    var w0 = weights[0];
                    for (var i = 0; i < width; i++) output[i] = w0 * input[i];
                    for (var c = 1; c < count; c++)
                    {
                        input = s + offsets[c];
                        var w = weights[c];
                        for (var i = 0; i < width; i++) output[i] += w * input[i];
                    }
                }
                else
                {
                    var first = last.First;
                    var second = last.Second!;
                    var firstWeight = last.FirstWeight!;
                    var secondWeight = last.SecondWeight!;
                    for (var i = 0; i < width; i++)
                    {
                        float sum = 0;
                        for (var c = 0; c < count; c++)
                        {
                            var input = s + offsets[c];
                            sum += weights[c] * (firstWeight[i] * input[first[i]] + secondWeight[i] * input[second[i]]);
                        }
                        output[i] = sum;
                    }
                }
            }
        });
    }

    /// <summary>What a Resize node computes.</summary>
    /// <param name="OutputShape">The output's shape.</param>
    /// <param name="Scales">Per axis, the scale the coordinate transformation divides by.</param>
    /// <param name="Linear">Whether the mode is linear (else nearest).</param>
    /// <param name="Transform">The coordinate_transformation_mode.</param>
    /// <param name="NearestMode">The nearest_mode.</param>
    internal sealed record ResizePlan(int[] OutputShape, float[] Scales, bool Linear, string Transform, string NearestMode);

    private static readonly string[] Transforms =
        ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nearest"];

    private static readonly string[] NearestModes = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"];

    /// <summary>Checks the inputs and attributes, and infers the output shape and the per-axis scales.</summary>
    internal static ResizePlan InferShape(OperatorContext context, Tensor x)
    {
        var attributes = context.Attributes;
        // Opset 10: (X, scales), no coordinate_transformation_mode or nearest_mode attributes.
        var opset10 = context.InputCount == 2;
        var mode = attributes.GetString("mode", "nearest");
        if (mode == "cubic") throw context.Error("mode 'cubic' is not supported (only nearest and linear)");
        if (mode is not ("nearest" or "linear")) throw context.Error($"mode '{mode}' is not one of nearest, linear, cubic");
        var transform = attributes.GetString("coordinate_transformation_mode", opset10 ? "asymmetric" : "half_pixel");
        if (transform == "tf_crop_and_resize")
            throw context.Error("coordinate_transformation_mode 'tf_crop_and_resize' is not supported");
        if (!Transforms.Contains(transform))
            throw context.Error($"coordinate_transformation_mode '{transform}' is not one of {string.Join(", ", Transforms)}, tf_crop_and_resize");
        var nearestMode = attributes.GetString("nearest_mode", opset10 ? "opset10" : "round_prefer_floor");
        if (!NearestModes.Contains(nearestMode) && !(opset10 && nearestMode == "opset10"))
            throw context.Error($"nearest_mode '{nearestMode}' is not one of {string.Join(", ", NearestModes)}");
        if (attributes.GetInt("antialias", 0) != 0) throw context.Error("antialias is not supported");
        var linear = mode == "linear";
        if (linear && x.ElementType is not (ElementType.Float32 or ElementType.Float16))
            throw context.Error($"linear mode needs float32 or float16 X, not {x.ElementType}");

        var rank = x.Shape.Length;
        if (rank == 0) throw context.Error("X must have at least one dimension, got a scalar");

        // Opset 10: (X, scales). Opset 11+: (X, roi, scales, sizes); an empty tensor counts as omitted.
        Tensor? Given(Tensor? t) => t is { ElementCount: > 0 } ? t : null;
        var scalesTensor = Given(context.OptionalInput(opset10 ? 1 : 2));
        var sizesTensor = opset10 ? null : Given(context.OptionalInput(3));
        if ((scalesTensor is null) == (sizesTensor is null))
            throw context.Error(scalesTensor is null
                ? "needs either scales (input 2) or sizes (input 3), got neither"
                : "takes scales (input 2) or sizes (input 3), not both");

        var axesAttribute = attributes.GetInts("axes");
        var axes = axesAttribute is null
            ? Enumerable.Range(0, rank).ToArray()
            : axesAttribute.Select(a => AxisHelper.NormalizeAxis(context, a, rank, "axes value")).ToArray();
        if (axes.Distinct().Count() != axes.Length) throw context.Error($"axes {AxisHelper.Format(axesAttribute!)} repeats an axis");

        var outputShape = (int[])x.Shape.Clone();
        var scales = new float[rank];
        Array.Fill(scales, 1f);
        if (scalesTensor is not null)
        {
            var values = ReadScales(context, scalesTensor);
            if (values.Length != axes.Length)
                throw context.Error($"scales has {values.Length} values {FormatFloats(values)}; X {AxisHelper.Format(x.Shape)} needs {axes.Length}");
            for (var i = 0; i < axes.Length; i++)
            {
                var axis = axes[i];
                if (!(values[i] > 0) || float.IsInfinity(values[i]))
                    throw context.Error($"scales {FormatFloats(values)} must be positive");
                var size = (double)(values[i] * (float)x.Shape[axis]);
                if (size > int.MaxValue) throw context.Error($"scales {FormatFloats(values)} make dimension {axis} too large");
                scales[axis] = values[i];
                outputShape[axis] = (int)size;
            }
        }
        else
        {
            var values = AxisHelper.ReadIndices(context, sizesTensor!, "sizes");
            if (values.Length != axes.Length)
                throw context.Error($"sizes has {values.Length} values {AxisHelper.Format(values)}; X {AxisHelper.Format(x.Shape)} needs {axes.Length}");
            if (values.Any(v => v < 0 || v > int.MaxValue))
                throw context.Error($"sizes {AxisHelper.Format(values)} must be non-negative");
            var policy = attributes.GetString("keep_aspect_ratio_policy", "stretch");
            if (policy is not ("stretch" or "not_larger" or "not_smaller"))
                throw context.Error($"keep_aspect_ratio_policy '{policy}' is not one of stretch, not_larger, not_smaller");
            if (policy == "stretch")
            {
                for (var i = 0; i < axes.Length; i++)
                {
                    outputShape[axes[i]] = (int)values[i];
                    scales[axes[i]] = x.Shape[axes[i]] == 0 ? 1f : (float)values[i] / x.Shape[axes[i]];
                }
            }
            else
            {
                var scale = policy == "not_larger" ? float.MaxValue : float.MinValue;
                for (var i = 0; i < axes.Length; i++)
                {
                    var s = (float)values[i] / x.Shape[axes[i]];
                    scale = policy == "not_larger" ? Math.Min(scale, s) : Math.Max(scale, s);
                }
                foreach (var axis in axes)
                {
                    scales[axis] = scale;
                    outputShape[axis] = (int)MathF.Round(scale * x.Shape[axis], MidpointRounding.AwayFromZero);
                }
            }
        }
        for (var axis = 0; axis < rank; axis++)
            if (x.Shape[axis] == 0 && outputShape[axis] != 0)
                throw context.Error($"cannot resize the empty dimension {axis} of X {AxisHelper.Format(x.Shape)} to {outputShape[axis]}");
        return new ResizePlan(outputShape, scales, linear, transform, nearestMode);
    }

    private static float[] ReadScales(OperatorContext context, Tensor scales)
    {
        if (scales.Shape.Length != 1) throw context.Error($"scales must be 1-D, not {scales}");
        return scales.ElementType switch
        {
            ElementType.Float32 => scales.Span<float>().ToArray(),
            ElementType.Float16 => Array.ConvertAll(scales.Span<Half>().ToArray(), h => (float)h),
            _ => throw context.Error($"scales must be float32 or float16, not {scales.ElementType}"),
        };
    }

    private static string FormatFloats(float[] values) =>
        $"[{string.Join(',', values.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]";
}
