using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

/// <summary>Plain managed reference implementations and helpers the kernel tests compare against.</summary>
internal static class Reference
{
    /// <summary>Skips the test, naming what is missing, where XNNPACK has no float16 arithmetic.</summary>
    public static void RequireFloat16()
    {
        if (!NativeRuntime.SupportsFloat16)
            Assert.Ignore("Skipped: this processor has no float16 arithmetic in XNNPACK (it needs AVX2 on x86-64, FP16 arithmetic on arm64).");
    }

    public static float[] RandomFloats(int count, int seed, float min = -1f, float max = 1f)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++) values[i] = min + (float)random.NextDouble() * (max - min);
        return values;
    }

    public static Half[] ToHalf(float[] values) => Array.ConvertAll(values, v => (Half)v);

    public static float[] ToFloat(ReadOnlySpan<Half> values)
    {
        var result = new float[values.Length];
        for (var i = 0; i < values.Length; i++) result[i] = (float)values[i];
        return result;
    }

    /// <summary>Rounds through float16, as a float16 kernel sees its inputs.</summary>
    public static float[] RoundToHalf(float[] values) => Array.ConvertAll(values, v => (float)(Half)v);

    public static byte[] Quantize(float[] values, Quantization q) => Array.ConvertAll(values, q.Quantize);

    public static float[] Dequantize(ReadOnlySpan<byte> values, Quantization q)
    {
        var result = new float[values.Length];
        for (var i = 0; i < values.Length; i++) result[i] = q.Dequantize(values[i]);
        return result;
    }

    /// <summary>Asserts |actual - expected| ≤ absolute + relative·|expected| everywhere, naming the first miss.</summary>
    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double relative, double absolute = 0)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), "length");
        for (var i = 0; i < expected.Length; i++)
        {
            var tolerance = absolute + relative * Math.Abs(expected[i]);
            if (!(Math.Abs(actual[i] - expected[i]) <= tolerance))
                Assert.Fail($"element {i}: got {actual[i]}, expected {expected[i]} (tolerance {tolerance:G3})");
        }
    }

    /// <summary>
    /// Asserts a float16 kernel's dot products (of <paramref name="k"/> terms each) against a float64 reference.
    /// XNNPACK's f16 kernels accumulate in f16, so each of the k additions rounds by up to 2^-11 of the
    /// partial sum; as a random walk that is about 2^-11·√k·|sum|, and 4 standard deviations give 2^-9·√k·rms.
    /// </summary>
    public static void AssertCloseFloat16Sums(ReadOnlySpan<Half> actual, float[] expected, int k)
    {
        var rms = Math.Sqrt(expected.Average(v => (double)v * v));
        AssertClose(ToFloat(actual), expected, Math.Pow(2, -10), Math.Pow(2, -9) * Math.Sqrt(k) * rms);
    }

    /// <summary>output[b, o] = Σᵢ input[b, i]·W[o, i] + bias[o]; W is [out, in], or [in, out] if transposed.</summary>
    public static float[] FullyConnected(float[] input, float[] weights, float[]? bias, int batch, int inputs, int outputs, bool transposed)
    {
        var output = new float[batch * outputs];
        for (var b = 0; b < batch; b++)
            for (var o = 0; o < outputs; o++)
            {
                double sum = bias?[o] ?? 0;
                for (var i = 0; i < inputs; i++)
                    sum += (double)input[b * inputs + i] * weights[transposed ? i * outputs + o : o * inputs + i];
                output[b * outputs + o] = (float)sum;
            }
        return output;
    }

    /// <summary>NHWC convolution with an OHWI kernel.</summary>
    public static float[] Convolution(float[] input, float[] kernel, float[]? bias, Convolution2dGeometry g, int batch, int height, int width)
    {
        int outH = g.OutputHeight(height), outW = g.OutputWidth(width), cin = g.InputChannels, cout = g.OutputChannels;
        var output = new float[batch * outH * outW * cout];
        for (var n = 0; n < batch; n++)
            for (var oy = 0; oy < outH; oy++)
                for (var ox = 0; ox < outW; ox++)
                    for (var oc = 0; oc < cout; oc++)
                    {
                        var group = oc / g.GroupOutputChannels;
                        double sum = bias?[oc] ?? 0;
                        for (var ky = 0; ky < g.KernelHeight; ky++)
                        {
                            var iy = oy * g.StrideHeight - g.PaddingTop + ky * g.DilationHeight;
                            if (iy < 0 || iy >= height) continue;
                            for (var kx = 0; kx < g.KernelWidth; kx++)
                            {
                                var ix = ox * g.StrideWidth - g.PaddingLeft + kx * g.DilationWidth;
                                if (ix < 0 || ix >= width) continue;
                                for (var ic = 0; ic < g.GroupInputChannels; ic++)
                                    sum += (double)input[((n * height + iy) * width + ix) * cin + group * g.GroupInputChannels + ic] *
                                           kernel[((oc * g.KernelHeight + ky) * g.KernelWidth + kx) * g.GroupInputChannels + ic];
                            }
                        }
                        output[((n * outH + oy) * outW + ox) * cout + oc] = (float)sum;
                    }
        return output;
    }

    /// <summary>NumPy-broadcast elementwise operation.</summary>
    public static float[] Binary(BinaryOperation operation, float[] a, int[] aShape, float[] b, int[] bShape)
    {
        Assert.That(Shapes.TryBroadcast(aShape, bShape, out var shape), Is.True);
        var count = (int)Shapes.ElementCount(shape);
        var output = new float[count];
        var index = new int[shape.Length];
        for (var flat = 0; flat < count; flat++)
        {
            var rest = flat;
            for (var d = shape.Length - 1; d >= 0; d--) { index[d] = rest % shape[d]; rest /= shape[d]; }
            float x = a[Offset(index, aShape)], y = b[Offset(index, bShape)];
            output[flat] = operation switch
            {
                BinaryOperation.Add => x + y,
                BinaryOperation.Subtract => x - y,
                BinaryOperation.Multiply => x * y,
                _ => x / y,
            };
        }
        return output;
    }

    /// <summary>Flat offset into a broadcast operand of <paramref name="shape"/> for an output index.</summary>
    private static int Offset(int[] index, int[] shape)
    {
        var offset = 0;
        for (var d = 0; d < shape.Length; d++)
        {
            var i = index[index.Length - shape.Length + d];
            offset = offset * shape[d] + (shape[d] == 1 ? 0 : i);
        }
        return offset;
    }

    public static float[] Sigmoid(float[] x) => Array.ConvertAll(x, v => (float)(1 / (1 + Math.Exp(-v))));

    public static float[] Softmax(float[] x, int rows, int channels)
    {
        var output = new float[x.Length];
        for (var r = 0; r < rows; r++)
        {
            var row = x.AsSpan(r * channels, channels);
            double max = double.NegativeInfinity, sum = 0;
            foreach (var v in row) max = Math.Max(max, v);
            foreach (var v in row) sum += Math.Exp(v - max);
            for (var c = 0; c < channels; c++) output[r * channels + c] = (float)(Math.Exp(row[c] - max) / sum);
        }
        return output;
    }

    /// <summary>NHWC max pooling; padding never wins.</summary>
    public static float[] MaxPool(float[] input, Pooling2dGeometry g, int batch, int height, int width, int channels)
    {
        int outH = g.OutputHeight(height), outW = g.OutputWidth(width);
        var output = new float[batch * outH * outW * channels];
        for (var n = 0; n < batch; n++)
            for (var oy = 0; oy < outH; oy++)
                for (var ox = 0; ox < outW; ox++)
                    for (var c = 0; c < channels; c++)
                    {
                        var max = float.NegativeInfinity;
                        for (var ky = 0; ky < g.PoolingHeight; ky++)
                            for (var kx = 0; kx < g.PoolingWidth; kx++)
                            {
                                int iy = oy * g.StrideHeight - g.PaddingTop + ky * g.DilationHeight;
                                int ix = ox * g.StrideWidth - g.PaddingLeft + kx * g.DilationWidth;
                                if (iy >= 0 && iy < height && ix >= 0 && ix < width)
                                    max = Math.Max(max, input[((n * height + iy) * width + ix) * channels + c]);
                            }
                        output[((n * outH + oy) * outW + ox) * channels + c] = max;
                    }
        return output;
    }

    /// <summary>C[i] = A[i]·B[i] with B [K, N] or [N, K] when transposed.</summary>
    public static float[] BatchMatMul(float[] a, float[] b, BatchMatMulShape s)
    {
        var c = new float[s.Batch * s.M * s.N];
        for (var item = 0; item < s.Batch; item++)
        {
            var aBase = s.BroadcastA ? 0 : item * s.M * s.K;
            var bBase = s.BroadcastB ? 0 : item * s.K * s.N;
            for (var i = 0; i < s.M; i++)
                for (var j = 0; j < s.N; j++)
                {
                    double sum = 0;
                    for (var p = 0; p < s.K; p++)
                        sum += (double)a[aBase + i * s.K + p] * b[bBase + (s.TransposeB ? j * s.K + p : p * s.N + j)];
                    c[(item * s.M + i) * s.N + j] = (float)sum;
                }
        }
        return c;
    }
}

/// <summary>Base of kernel tests: a thread pool per test and a leak check of the shared allocator.</summary>
internal abstract class KernelTestBase
{
    private long _liveBlocksBefore;

    protected static bool HasFloat16 => NativeRuntime.SupportsFloat16;

    [SetUp]
    public void RecordLiveBlocks() => _liveBlocksBefore = NativeAllocator.Shared.LiveBlocks;

    [TearDown]
    public void AssertNothingLeaked()
    {
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Passed)
            Assert.That(NativeAllocator.Shared.LiveBlocks, Is.EqualTo(_liveBlocksBefore), "native buffers leaked by the test");
    }

    /// <summary>Runs <paramref name="test"/> on a pool of 1 and of 2 threads, naming the count on failure.</summary>
    protected static void WithEachThreadCount(Action<XnnThreadPool> test)
    {
        foreach (var threads in new[] { 1, 2 })
        {
            using var pool = XnnThreadPool.Create(threads);
            using (Assert.EnterMultipleScope())
            {
                TestContext.Out.WriteLine($"threads: {threads}");
                test(pool);
            }
        }
    }

    protected static void RequireFloat16() => Reference.RequireFloat16();
}
