using OnnxStream.ModelBuilder;

namespace OnnxStream.Tests.ModelBuilder;

/// <summary>Plausible, deterministic inputs for the builder's tiny Stable Diffusion graphs, by input name.</summary>
internal static class SynthInputs
{
    /// <summary>An input's values (float or int64) and shape.</summary>
    internal sealed record Value(float[]? Floats, long[]? Longs, long[] Shape);

    /// <summary>Inputs for <paramref name="graph"/>; token ids for a <paramref name="vocabulary"/> (the tiny text encoders': 1000, as tiny-sd15's synthetic tokenizer).</summary>
    public static Dictionary<string, Value> For(OnnxGraphBuilder graph, int vocabulary = 1000)
    {
        var random = new Random(1234);
        var inputs = new Dictionary<string, Value>();
        foreach (var input in graph.Inputs)
        {
            var shape = input.Shape.ToArray();
            var count = (int)shape.Aggregate(1L, (a, d) => a * d);
            inputs[input.Name] = input.Name switch
            {
                "timestep" => new Value([981f], null, shape),
                // Original and target size 1024², no crop (what the SDXL pipeline passes).
                "time_ids" => new Value([1024, 1024, 0, 0, 1024, 1024], null, shape),
                "input_ids" => new Value(null, TokenIds(random, count, vocabulary), shape),
                _ => new Value(Enumerable.Range(0, count).Select(_ => (float)random.NextDouble() * 2 - 1).ToArray(), null, shape),
            };
        }
        return inputs;
    }

    /// <summary>Start-of-text, a dozen words, end-of-text padded with end-of-text (the two largest ids, as in CLIP's vocabulary).</summary>
    private static long[] TokenIds(Random random, int count, int vocabulary)
    {
        var ids = new long[count];
        Array.Fill(ids, vocabulary - 1);
        ids[0] = vocabulary - 2;
        for (var i = 1; i <= 12; i++) ids[i] = random.Next(vocabulary - 2);
        return ids;
    }
}
