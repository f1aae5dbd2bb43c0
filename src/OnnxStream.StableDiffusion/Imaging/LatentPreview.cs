using OnnxStream.StableDiffusion.Decoding;

namespace OnnxStream.StableDiffusion.Imaging;

/// <summary>
/// A cheap RGB approximation of a latent, without the VAE: each latent pixel's 4 channels projected linearly to
/// R, G, B (plus a bias), mapped from [-1, 1] to [0, 255] as decoded images are. An image 1/8 of the decoded size,
/// or upsampled bilinearly by a whole factor (8: the decoded size). For previews of the denoising steps.
/// </summary>
public static class LatentPreview
{
    // The published latent → RGB factors of ComfyUI (comfy/latent_formats.py, classes SD15 and SDXL: latent_rgb_factors,
    // latent_rgb_factors_bias), a least-squares fit of each VAE's decoded colours to its latent channels; the original
    // OnnxStream's --preview-steps uses the same matrices (after stable-diffusion.cpp PR #454). Rows are latent channels,
    // columns R, G, B. They apply to the latent the sampler works on (before dividing by the VAE scaling factor).
    private static readonly float[,] Sd15Factors =
    {
        { 0.3512f, 0.2297f, 0.3227f },
        { 0.3250f, 0.4974f, 0.2350f },
        { -0.2829f, 0.1762f, 0.2721f },
        { -0.2120f, -0.2616f, -0.7177f },
    };

    private static readonly float[] Sd15Bias = [0, 0, 0];

    private static readonly float[,] SdxlFactors =
    {
        { 0.3651f, 0.4232f, 0.4341f },
        { -0.2533f, -0.0042f, 0.1068f },
        { 0.1076f, 0.1111f, -0.0362f },
        { -0.3165f, -0.2492f, -0.2188f },
    };

    private static readonly float[] SdxlBias = [0.1084f, -0.0175f, -0.0011f];

    /// <summary>The preview of a (1, 4, <paramref name="height"/>, <paramref name="width"/>) latent, channel-major.</summary>
    /// <param name="latent">The latent (as the sampler holds it: not divided by the VAE scaling factor).</param>
    /// <param name="height">Latent rows.</param>
    /// <param name="width">Latent columns.</param>
    /// <param name="xl">SDXL's factors rather than SD 1.5's (the two VAEs' latent spaces differ).</param>
    /// <param name="upscale">Output pixels per latent pixel on each side (1: the latent's size; 8: the decoded image's size).</param>
    /// <exception cref="ArgumentException">The latent's length is not 4 · height · width, or <paramref name="upscale"/> is below 1.</exception>
    public static RgbImage ToImage(ReadOnlySpan<float> latent, int height, int width, bool xl, int upscale = 1)
    {
        if (height < 1 || width < 1 || latent.Length != 4 * height * width)
            throw new ArgumentException($"The latent has {latent.Length} values; (1, 4, {height}, {width}) needs {4 * height * width}.", nameof(latent));
        ArgumentOutOfRangeException.ThrowIfLessThan(upscale, 1);
        var factors = xl ? SdxlFactors : Sd15Factors;
        var bias = xl ? SdxlBias : Sd15Bias;
        var plane = height * width;
        // Project at the latent's size, then interpolate the small RGB planes straight into the image's bytes.
        var rgb = new float[3 * plane];
        for (var i = 0; i < plane; i++)
            for (var c = 0; c < 3; c++)
            {
                var value = bias[c];
                for (var channel = 0; channel < 4; channel++) value += latent[channel * plane + i] * factors[channel, c];
                rgb[c * plane + i] = value;
            }
        if (upscale == 1) return LatentDecoder.ToImage(rgb, height, width);

        // Bilinear, sampling at pixel centres (as PyTorch's interpolate(mode="bilinear", align_corners=False)), edges clamped.
        int outHeight = height * upscale, outWidth = width * upscale;
        var pixels = new byte[3 * outHeight * outWidth];
        for (var y = 0; y < outHeight; y++)
        {
            var (y0, y1, wy) = Neighbours(y, upscale, height);
            for (var x = 0; x < outWidth; x++)
            {
                var (x0, x1, wx) = Neighbours(x, upscale, width);
                for (var c = 0; c < 3; c++)
                {
                    var source = c * plane;
                    var top = rgb[source + y0 * width + x0] * (1 - wx) + rgb[source + y0 * width + x1] * wx;
                    var bottom = rgb[source + y1 * width + x0] * (1 - wx) + rgb[source + y1 * width + x1] * wx;
                    pixels[3 * (y * outWidth + x) + c] = LatentDecoder.ToPixel(top * (1 - wy) + bottom * wy);
                }
            }
        }
        return new RgbImage(outWidth, outHeight, pixels);
    }

    /// <summary>The two source pixels around output pixel <paramref name="position"/> and the second one's weight.</summary>
    private static (int Low, int High, float Weight) Neighbours(int position, int factor, int size)
    {
        var source = Math.Max(0, (position + 0.5f) / factor - 0.5f);
        var low = Math.Min((int)source, size - 1);
        var high = Math.Min(low + 1, size - 1);
        return (low, high, source - low);
    }
}
