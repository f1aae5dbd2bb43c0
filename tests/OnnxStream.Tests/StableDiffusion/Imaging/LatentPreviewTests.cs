using OnnxStream.StableDiffusion.Imaging;

namespace OnnxStream.Tests.StableDiffusion.Imaging;

/// <summary><see cref="LatentPreview"/>: the published latent → RGB projections, and the ×8 upsampling.</summary>
internal sealed class LatentPreviewTests
{
    /// <summary>
    /// A latent with 1 in one channel and 0 elsewhere gives that channel's row of factors (plus SDXL's bias), mapped
    /// from [-1, 1] to bytes: SD 1.5 channel 0 (0.3512, 0.2297, 0.3227) → 1.3512·127.5 = 172.3 → 172, 156.8 → 157,
    /// 168.6 → 169; channel 3 (-0.2120, -0.2616, -0.7177) → 0.788·127.5 = 100.47 → 100, 94.1 → 94, 36.0 → 36;
    /// SDXL channel 0 (0.3651 + 0.1084, 0.4232 - 0.0175, 0.4341 - 0.0011) → 187.9 → 188, 179.2 → 179, 182.7 → 183.
    /// </summary>
    [TestCase(false, 0, 172, 157, 169)]
    [TestCase(false, 3, 100, 94, 36)]
    [TestCase(true, 0, 188, 179, 183)]
    public void One_channel_gives_its_row_of_factors(bool xl, int channel, int r, int g, int b)
    {
        const int height = 2, width = 3;
        var latent = new float[4 * height * width];
        latent.AsSpan(channel * height * width, height * width).Fill(1);
        var image = LatentPreview.ToImage(latent, height, width, xl);
        Assert.That((image.Width, image.Height), Is.EqualTo((width, height)));
        for (var i = 0; i < height * width; i++)
            Assert.That(image.Pixels.Skip(3 * i).Take(3), Is.EqualTo(new byte[] { (byte)r, (byte)g, (byte)b }), $"pixel {i}");
    }

    [Test]
    public void The_channels_add_up_and_the_result_is_clamped()
    {
        var latent = new float[] { 1, 10, 0.5f, -10 }; // one pixel, four channels
        var pixel = LatentPreview.ToImage(latent, 1, 1, xl: false).Pixels;
        float[] expected =
        [
            0.3512f + 10 * 0.3250f + 0.5f * -0.2829f - 10 * -0.2120f,
            0.2297f + 10 * 0.4974f + 0.5f * 0.1762f - 10 * -0.2616f,
            0.3227f + 10 * 0.2350f + 0.5f * 0.2721f - 10 * -0.7177f,
        ];
        Assert.That(expected.All(v => v > 1), "all three channels are past white");
        Assert.That(pixel, Is.EqualTo(new byte[] { 255, 255, 255 }));
        Assert.That(LatentPreview.ToImage(latent.Select(v => -v).ToArray(), 1, 1, xl: false).Pixels, Is.EqualTo(new byte[] { 0, 0, 0 }));
    }

    /// <summary>
    /// ×8 is bilinear at pixel centres: output pixel x samples the latent at (x + 0.5)/8 − 0.5, so pixels 3 and 4 of each
    /// block of 8 straddle the latent pixel's centre, the first and last 4 pixels of the row are clamped to the edge
    /// values, and values in between ramp linearly.
    /// </summary>
    [Test]
    public void Times_8_interpolates_between_latent_pixel_centres()
    {
        // Two latent pixels side by side whose red values are -0.5 and 0.5 (channel 0 of SD 1.5 drives red by 0.3512).
        var latent = new float[4 * 2];
        latent[0] = -0.5f / 0.3512f;
        latent[1] = 0.5f / 0.3512f;
        var small = LatentPreview.ToImage(latent, 1, 2, xl: false);
        var large = LatentPreview.ToImage(latent, 1, 2, xl: false, upscale: 8);
        Assert.That((large.Width, large.Height), Is.EqualTo((16, 8)));
        var red = Enumerable.Range(0, 16).Select(x => (int)large.Pixels[3 * x]).ToArray();
        Assert.That(red[..4], Is.All.EqualTo(small.Pixels[0]), "left edge clamped");
        Assert.That(red[12..], Is.All.EqualTo(small.Pixels[3]), "right edge clamped");
        Assert.That(red[4..12], Is.Ordered.Ascending);
        // Pixel 4 samples at 0.0625 of the way, pixel 11 at 0.9375: (−0.5 + t)·127.5 + 127.5.
        Assert.That(red[4], Is.EqualTo((int)MathF.Round((-0.5f + 0.0625f + 1) * 127.5f)));
        Assert.That(red[11], Is.EqualTo((int)MathF.Round((-0.5f + 0.9375f + 1) * 127.5f)));
        for (var y = 1; y < 8; y++)
            Assert.That(large.Pixels.Skip(y * 16 * 3).Take(16 * 3), Is.EqualTo(large.Pixels.Take(16 * 3)), $"row {y} as row 0");
    }

    [Test]
    public void A_latent_of_the_wrong_size_is_refused()
    {
        Assert.That(() => LatentPreview.ToImage(new float[4 * 6], 2, 2, xl: false), Throws.ArgumentException.With.Message.Contains("(1, 4, 2, 2) needs 16"));
        Assert.That(() => LatentPreview.ToImage(new float[16], 2, 2, xl: false, upscale: 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
