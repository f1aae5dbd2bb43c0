using OnnxStream.StableDiffusion.Decoding;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.StableDiffusion.Sampling;
using OnnxStream.ModelBuilder;

namespace OnnxStream.Tests.StableDiffusion.Decoding;

internal sealed class TiledDecodingTests
{
    [Test]
    public void The_original_sdxl_plan_is_5_by_5_tiles_of_32_overlapping_by_8()
    {
        Assert.That(LatentTiling.Origins(128, 32, 8), Is.EqualTo(new[] { 0, 24, 48, 72, 96 }));
        Assert.That(LatentTiling.Plan(128, 128, 32).Tiles, Has.Count.EqualTo(25));
        Assert.That(LatentTiling.Plan(128, 128, 32).Overlap, Is.EqualTo(8));
        Assert.That(LatentTiling.Origins(32, 16, 4), Is.EqualTo(new[] { 0, 8, 16 }), "spread evenly, the last ends flush");
        Assert.That(LatentTiling.Origins(100, 32, 8), Is.EqualTo(new[] { 0, 22, 45, 68 }));
        Assert.That(LatentTiling.Origins(20, 32, 8), Is.EqualTo(new[] { 0 }), "a latent smaller than a tile is one tile");
    }

    [Test]
    public void Weights_of_two_tiles_overlapping_by_the_ramp_sum_to_one()
    {
        // Tiles [0, 256) and [192, 448) of a 448-pixel axis, ramp 64.
        for (var x = 192; x < 256; x++)
        {
            var sum = LatentTiling.Weight(x, 0, 256, 448, 64) + LatentTiling.Weight(x - 192, 192, 256, 448, 64);
            Assert.That(sum, Is.EqualTo(1f).Within(1e-6f), $"pixel {x}");
        }
        Assert.That(LatentTiling.Weight(0, 0, 256, 448, 64), Is.EqualTo(1f), "no ramp at the image's edge");
    }

    /// <summary>
    /// The model builder's tiny SD 1.5 VAE decoder (seeded random weights, shape-generic like a dynamic-axes export;
    /// tiny-sd15's exports in ../shared bake their 32×32 size into Reshape constants) on a seeded 32×32 latent, whole
    /// and in 16×16 tiles (overlap 8). A VAE pixel depends on the whole latent through the mid-block attention and a
    /// wide receptive field, so tiles cannot equal the whole decoding exactly; the bound is on how far, and the
    /// differences must concentrate where tiles meet: mean |difference| at most 10/255, and no more away from the
    /// overlap bands than in them. Measured: mean 7.3/255 (7.8 in the overlap bands, 5.6 elsewhere), max 149 —
    /// large because with random weights nothing is local (a trained VAE's tiles differ far less; the original's
    /// SDXL tiling shows no visible seams).
    /// </summary>
    [Test]
    public void Tiled_decoding_is_close_to_whole_decoding_and_differs_most_at_the_seams()
    {
        var folder = Directory.CreateTempSubdirectory("sd-tiles-").FullName;
        try
        {
            var model = Path.Combine(folder, "model.onnx");
            OnnxModelWriter.Write(StableDiffusionModels.Build(StableDiffusionComponent.Sd15VaeDecoder, ModelScale.Tiny), model);
            var latent = new float[4 * 32 * 32];
            new GaussianNoise(7).Fill(latent);
            var backend = OnnxStreamBackend.ForProfile(MemoryProfile.Default, 2);
            var tiles = new List<DecodingProgress>();
            var whole = LatentDecoder.Decode(backend, model, latent, 32, 32, latentScale: 1);
            var tiled = LatentDecoder.Decode(backend, model, latent, 32, 32, latentScale: 1, tileSize: 16, new InlineProgress(tiles.Add));
            Assert.That(tiles.Select(t => t.Tile), Is.EqualTo(Enumerable.Range(1, 9)));
            Assert.That((tiled.Width, tiled.Height), Is.EqualTo((256, 256)));

            // Tiles start at latent 0, 8, 16 and are 16 wide: pixels 64..192 are in two tiles on that axis.
            static bool InOverlap(int p) => p is >= 64 and < 192;
            double seamSum = 0, restSum = 0;
            int seamCount = 0, restCount = 0, max = 0;
            for (var y = 0; y < 256; y++)
                for (var x = 0; x < 256; x++)
                    for (var c = 0; c < 3; c++)
                    {
                        var i = (y * 256 + x) * 3 + c;
                        var difference = Math.Abs(whole.Pixels[i] - tiled.Pixels[i]);
                        max = Math.Max(max, difference);
                        if (InOverlap(x) || InOverlap(y)) { seamSum += difference; seamCount++; }
                        else { restSum += difference; restCount++; }
                    }
            var mean = (seamSum + restSum) / (seamCount + restCount);
            TestContext.Out.WriteLine($"tiled vs whole: mean |difference| {mean:F2}/255, in overlap bands {seamSum / seamCount:F2}, elsewhere {restSum / restCount:F2}, max {max}; " +
                                      $"{whole.Pixels.Distinct().Count()} distinct byte values");
            Assert.That(whole.Pixels.Distinct().Count(), Is.GreaterThan(50), "an image, not a flat colour");
            Assert.That(mean, Is.LessThanOrEqualTo(10));
            Assert.That(restSum / restCount, Is.LessThanOrEqualTo(seamSum / seamCount));
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    private sealed class InlineProgress(Action<DecodingProgress> report) : IProgress<DecodingProgress>
    {
        public void Report(DecodingProgress value) => report(value);
    }
}
