using OnnxStream.Graph;
using OnnxStream.Kernels;
using OnnxStream.Runtime;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.Quantizing;

/// <summary>range_data.txt reading and writing, the range → quantization rule, and the percentile rule.</summary>
internal sealed class RangeDataTests
{
    [Test]
    public void Range_data_round_trips_with_either_line_ending()
    {
        var text = "/a/Conv,-2.352396,1.658353\r\n\n/b,with comma/Add,0,1e-7\n/c/Mul,-0.5,-0.25\r\n";
        var data = RangeData.Read(new StringReader(text));
        Assert.That(data.Names, Is.EqualTo(new[] { "/a/Conv", "/b,with comma/Add", "/c/Mul" }));
        Assert.That(data.TryGetRange("/a/Conv", out var min, out var max));
        Assert.That((min, max), Is.EqualTo((-2.352396f, 1.658353f)));
        var written = new StringWriter();
        data.Write(written);
        Assert.That(written.ToString(), Does.EndWith("\r\n"));
        Assert.That(written.ToString().Split("\r\n"), Has.Length.EqualTo(4), "three lines, each ending in \\r\\n");
        var again = RangeData.Read(new StringReader(written.ToString()));
        foreach (var name in data.Names)
        {
            data.TryGetRange(name, out var a, out var b);
            again.TryGetRange(name, out var c, out var d);
            Assert.That((c, d), Is.EqualTo((a, b)), name);
        }
    }

    [Test]
    public void The_shipped_range_data_parses()
    {
        var data = RangeData.Load(SharedFixtures.Require("models/tiny-sd15/vae_decoder_qu8/range_data.txt"));
        Assert.That(data.Count, Is.EqualTo(280));
        Assert.That(data.TryGetRange("/post_quant_conv/Conv", out var min, out var max));
        Assert.That((min, max), Is.EqualTo((-2.352396f, 1.658353f)));
    }

    [TestCase("/a,1\n", "line 1", "NAME,MIN,MAX")]
    [TestCase("/a,1,2\n/b,x,2\n", "line 2", "finite numbers")]
    [TestCase("/a,1,nan\n", "line 1", "finite numbers")]
    [TestCase("/a,-inf,2\n", "line 1", "finite numbers")]
    [TestCase("/a,1,2\n\n/b,0,1e39\n", "line 3", "finite numbers")]
    [TestCase("/a,3,2\n", "line 1", "greater than MAX")]
    [TestCase("/a,1,2\r\n/a,1,3\r\n", "line 2", "already has a range")]
    public void Malformed_range_data_is_rejected_with_file_and_line(string text, string line, string message)
    {
        var error = Assert.Throws<ModelFormatException>(() => RangeData.Read(new StringReader(text), "ranges.txt"))!;
        Assert.That(error.Message, Does.StartWith($"ranges.txt:{line[5..]}:").And.Contain(message));
    }

    [Test]
    public void Including_a_range_widens_the_recorded_one()
    {
        var data = new RangeData();
        data.Include("x", -1, 2);
        data.Include("x", 0, 3);
        data.Include("x", -0.5f, 1);
        Assert.That(data.TryGetRange("x", out var min, out var max));
        Assert.That((min, max), Is.EqualTo((-1f, 3f)));
        Assert.Throws<ArgumentException>(() => data.Include("x", 2, 1));
        Assert.Throws<ArgumentException>(() => data.Include("x", 0, float.PositiveInfinity));
    }

    [Test]
    public void A_range_is_widened_to_include_zero_and_encoded_as_the_original_does()
    {
        Assert.That(Quantization.FromRange(-1, 3), Is.EqualTo(new Quantization(4f / 255, 63)), "zero point trunc(1 / (4/255)) = 63");
        Assert.That(Quantization.FromRange(2, 5), Is.EqualTo(new Quantization(5f / 255, 0)), "2..5 widened to 0..5");
        Assert.That(Quantization.FromRange(-5, -2), Is.EqualTo(new Quantization(5f / 255, 255)), "-5..-2 widened to -5..0");
        Assert.That(Quantization.FromRange(0, 0), Is.Null, "nothing to encode");
    }

    [Test]
    public void The_percentiles_skip_a_tenth_of_a_percent_at_each_end()
    {
        // 0..99999 shuffled, with NaN and infinities (not counted): n = 100000, s[100] and s[100000 - 101].
        var values = Enumerable.Range(0, 100_000).Select(i => (float)i).OrderBy(v => v * 7919 % 100_000)
            .Concat([float.NaN, float.PositiveInfinity, float.NegativeInfinity]).ToArray();
        Assert.That(PercentileRange.Compute(values), Is.EqualTo((100f, 99_899f)));
        Assert.That(PercentileRange.Compute([1f, float.NaN]), Is.Null, "one finite value");
        Assert.That(PercentileRange.Compute([3f, -2f]), Is.EqualTo((-2f, 3f)));
    }

    [TestCase(2, 1)]
    [TestCase(999, 1)]
    [TestCase(1001, 2)]
    [TestCase(300_000, 1)]
    [TestCase(300_000, 2)]
    public void The_percentiles_equal_those_of_a_sorted_copy(int count, int threads)
    {
        // Normal values, many repeated (rounded to 1/64), and a few huge outliers.
        var random = new Random(count);
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            var normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            values[i] = MathF.Round((float)normal * 64) / 64 * (i % 997 == 5 ? 1e6f : 1f);
        }
        var sorted = values.Order().ToArray();
        var fraction = count * PercentileRange.Fraction;
        var expected = (sorted[(int)fraction], sorted[count + (int)(fraction * -1 - 1)]);
        Assert.That(PercentileRange.Compute(values, new ParallelOptions { MaxDegreeOfParallelism = threads }), Is.EqualTo(expected));
    }
}
