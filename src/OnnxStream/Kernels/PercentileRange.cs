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
        var pass = new Pass((nint)data, count, chunks, parallel);
        var (finite, min, max) = pass.Run([], []);
        if (finite < 2) return null;
        // Python: s[int(len(s) * from_left)] and s[int(len(s) * from_right * -1 - 1)], in doubles.
        var fraction = finite * Fraction;
        long[] ranks = [(long)fraction, finite + (long)(fraction * -1 - 1)];
        float[] lo = [min, min], hi = [max, max];
        while (lo[0] < hi[0] || lo[1] < hi[1])
        {
            // One histogram per rank still open; one serves both while their intervals are the same.
            var open = lo[0] == lo[1] && hi[0] == hi[1] ? [0] : Enumerable.Range(0, 2).Where(t => lo[t] < hi[t]).ToArray();
            var intervals = open.Select(t => (lo[t], hi[t])).ToArray();
            var histograms = new Histogram[open.Length];
            pass.Run(intervals, histograms);
            for (var t = 0; t < 2; t++)
            {
                if (!(lo[t] < hi[t])) continue;
                var histogram = histograms[Math.Max(0, Array.IndexOf(open, t))];
                var bin = 0;
                var seen = histogram.Below;
                while (seen + histogram.Counts[bin] <= ranks[t]) seen += histogram.Counts[bin++];
                // Bins are monotone in the value, so the bin's members are exactly the values in [its min, its max].
                lo[t] = histogram.Min[bin];
                hi[t] = histogram.Max[bin];
            }
        }
        return (lo[0], lo[1]);
    }

    /// <summary>Passes over one set of values, split in chunks that each fill their own histograms (kept for the next pass).</summary>
    private sealed class Pass(nint data, long count, int chunks, ParallelOptions parallel)
    {
        private readonly Histogram[][] _parts = Enumerable.Range(0, chunks).Select(_ => new[] { new Histogram(), new Histogram() }).ToArray();

        /// <summary>
        /// The finite count, min and max of the values; and for each interval [lo, hi] the histogram of the finite
        /// values in it and the count of those below it, merged into <paramref name="histograms"/>.
        /// </summary>
        public (long Count, float Min, float Max) Run((float Lo, float Hi)[] intervals, Histogram[] histograms)
        {
            var results = new (long Count, float Min, float Max)[chunks];
            var scales = intervals.Select(i => Bins / ((double)i.Hi - i.Lo)).ToArray();
            void Chunk(int chunk)
            {
                var parts = _parts[chunk];
                for (var t = 0; t < intervals.Length; t++) parts[t].Reset();
                long n = 0;
                float min = float.PositiveInfinity, max = float.NegativeInfinity;
                var values = (float*)data;
                for (long i = count * chunk / chunks, end = count * (chunk + 1) / chunks; i < end; i++)
                {
                    var v = values[i];
                    if (!float.IsFinite(v)) continue;
                    n++;
                    if (v < min) min = v;
                    if (v > max) max = v;
                    for (var t = 0; t < intervals.Length; t++)
                    {
                        var (lo, hi) = intervals[t];
                        if (v < lo) parts[t].Below++;
                        else if (v <= hi) parts[t].Add((int)Math.Min(((double)v - lo) * scales[t], Bins - 1), v);
                    }
                }
                results[chunk] = (n, min, max);
            }
            if (chunks == 1) Chunk(0);
            else Parallel.For(0, chunks, parallel, Chunk);
            for (var t = 0; t < intervals.Length; t++)
            {
                histograms[t] = _parts[0][t];
                for (var chunk = 1; chunk < chunks; chunk++) histograms[t].Merge(_parts[chunk][t]);
            }
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
