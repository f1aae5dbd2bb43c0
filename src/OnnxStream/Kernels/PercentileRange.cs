namespace OnnxStream.Kernels;

/// <summary>
/// The original OnnxStream's quantization range of a set of values: over the finite values sorted
/// (n of them), low = the value at index ⌊n·0.001⌋ and high = the value at index n + trunc(-n·0.001 - 1),
/// i.e. the 0.1% and 99.9% percentiles. Found exactly without sorting or copying: each order statistic
/// is narrowed by histogram passes over the values (2048 bins, each tracking its smallest and largest
/// member) until its bin holds one distinct value, a few passes in practice, with 24 KiB of scratch
/// per parallel chunk whatever the number of values.
/// </summary>
public static unsafe class PercentileRange
{
    /// <summary>Fraction of the sorted finite values skipped at each end.</summary>
    public const double Fraction = 0.001;

    private const int Bins = 2048;

    /// <summary>Values per parallel chunk, at least.</summary>
    private const long MinChunk = 1 << 16;

    /// <summary>(low, high) of <paramref name="values"/> by the rule above; null when fewer than two values are finite.</summary>
    public static (float Low, float High)? Compute(ReadOnlySpan<float> values, ParallelOptions? parallel = null)
    {
        fixed (float* data = values) return Compute(data, values.Length, parallel ?? new ParallelOptions());
    }

    /// <summary>(low, high) of <paramref name="count"/> floats at <paramref name="data"/>; null when fewer than two are finite.</summary>
    internal static (float Low, float High)? Compute(float* data, long count, ParallelOptions parallel)
    {
        var chunks = (int)Math.Clamp(count / MinChunk, 1, Math.Max(1, parallel.MaxDegreeOfParallelism) * 2L);
        var parts = new Histogram[chunks];
        for (var i = 0; i < chunks; i++) parts[i] = new Histogram();
        var pass = new Pass((nint)data, count, parts, parallel);
        var (finite, min, max) = pass.Run(float.NegativeInfinity, float.PositiveInfinity, histogram: false);
        if (finite < 2) return null;
        // Python: s[int(len(s) * from_left)] and s[int(len(s) * from_right * -1 - 1)], in doubles.
        var fraction = finite * Fraction;
        var lowRank = (long)fraction;
        var highRank = finite + (long)(fraction * -1 - 1);
        return (pass.Select(lowRank, min, max), pass.Select(highRank, min, max));
    }

    /// <summary>Passes over one set of values, split in chunks that each fill their own histogram.</summary>
    private sealed class Pass(nint data, long count, Histogram[] parts, ParallelOptions parallel)
    {
        /// <summary>The value of 0-based rank <paramref name="rank"/> among the finite values, all of which lie in [<paramref name="lo"/>, <paramref name="hi"/>].</summary>
        public float Select(long rank, float lo, float hi)
        {
            var total = parts[0];
            while (lo < hi)
            {
                Run(lo, hi, histogram: true);
                for (var i = 1; i < parts.Length; i++) total.Merge(parts[i]);
                var bin = 0;
                var seen = total.Below;
                while (seen + total.Counts[bin] <= rank) seen += total.Counts[bin++];
                // Bins are monotone in the value, so the bin's members are exactly the values in [its min, its max].
                lo = total.Min[bin];
                hi = total.Max[bin];
            }
            return lo;
        }

        /// <summary>
        /// The finite count, min and max of the values in [lo, hi]; with <paramref name="histogram"/>, also each
        /// chunk's histogram of them over [lo, hi] and its count of finite values below lo.
        /// </summary>
        public (long Count, float Min, float Max) Run(float lo, float hi, bool histogram)
        {
            var results = new (long Count, float Min, float Max)[parts.Length];
            var scale = Bins / ((double)hi - lo);
            void Chunk(int chunk)
            {
                var part = histogram ? parts[chunk] : null;
                part?.Reset();
                long n = 0;
                float min = float.PositiveInfinity, max = float.NegativeInfinity;
                var values = (float*)data;
                for (long i = count * chunk / parts.Length, end = count * (chunk + 1) / parts.Length; i < end; i++)
                {
                    var v = values[i];
                    if (!float.IsFinite(v)) continue;
                    if (v < lo)
                    {
                        if (part is not null) part.Below++;
                        continue;
                    }
                    if (v > hi) continue;
                    n++;
                    if (v < min) min = v;
                    if (v > max) max = v;
                    part?.Add((int)Math.Min(((double)v - lo) * scale, Bins - 1), v);
                }
                results[chunk] = (n, min, max);
            }
            if (parts.Length == 1) Chunk(0);
            else Parallel.For(0, parts.Length, parallel, Chunk);
            long total = 0;
            float allMin = float.PositiveInfinity, allMax = float.NegativeInfinity;
            foreach (var (n, min, max) in results)
            {
                total += n;
                allMin = Math.Min(allMin, min);
                allMax = Math.Max(allMax, max);
            }
            return (total, allMin, allMax);
        }
    }

    /// <summary>Per bin: count, smallest and largest member; and the count of values below the first bin.</summary>
    private sealed class Histogram
    {
        public long Below;
        public readonly int[] Counts = new int[Bins];
        public readonly float[] Min = new float[Bins];
        public readonly float[] Max = new float[Bins];

        public void Reset()
        {
            Below = 0;
            Array.Clear(Counts);
            Array.Fill(Min, float.PositiveInfinity);
            Array.Fill(Max, float.NegativeInfinity);
        }

        public void Add(int bin, float v)
        {
            Counts[bin]++;
            if (v < Min[bin]) Min[bin] = v;
            if (v > Max[bin]) Max[bin] = v;
        }

        public void Merge(Histogram part)
        {
            Below += part.Below;
            for (var i = 0; i < Bins; i++)
            {
                Counts[i] += part.Counts[i];
                Min[i] = Math.Min(Min[i], part.Min[i]);
                Max[i] = Math.Max(Max[i], part.Max[i]);
            }
        }
    }
}
