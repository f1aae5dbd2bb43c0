namespace OnnxStream.StableDiffusion.Decoding;

/// <summary>One tile: its latent origin and size.</summary>
/// <param name="Y">First latent row.</param>
/// <param name="X">First latent column.</param>
/// <param name="Height">Latent rows.</param>
/// <param name="Width">Latent columns.</param>
public readonly record struct LatentTile(int Y, int X, int Height, int Width);

/// <summary>
/// How a latent is cut into overlapping square tiles, as the original decodes SDXL: tiles of
/// <c>tileSize</c> that overlap their left and upper neighbours by a quarter of a tile (more for the last
/// row and column, which end flush with the latent), blended linearly across each overlap.
/// </summary>
public static class LatentTiling
{
    /// <summary>
    /// Tile origins along one axis of <paramref name="length"/>: every <c>size - overlap</c>, the last moved back
    /// to end at <paramref name="length"/>; one tile of the whole length when it fits in one.
    /// </summary>
    public static int[] Origins(int length, int size, int overlap)
    {
        if (length <= size) return [0];
        var stride = size - overlap;
        var count = (length - size + stride - 1) / stride + 1;
        return Enumerable.Range(0, count).Select(i => Math.Min(i * stride, length - size)).ToArray();
    }

    /// <summary>The tiles of a <paramref name="height"/>×<paramref name="width"/> latent, row by row.</summary>
    public static IReadOnlyList<LatentTile> Plan(int height, int width, int tileSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(tileSize, 4);
        var overlap = tileSize / 4;
        return (from y in Origins(height, tileSize, overlap)
                from x in Origins(width, tileSize, overlap)
                select new LatentTile(y, x, Math.Min(tileSize, height), Math.Min(tileSize, width))).ToList();
    }

    /// <summary>
    /// The blending weight of pixel <paramref name="index"/> of a tile spanning [<paramref name="start"/>, <paramref name="start"/> +
    /// <paramref name="size"/>) of an axis of <paramref name="length"/> pixels: rising linearly over the first
    /// <paramref name="ramp"/> pixels unless the tile starts at the image's edge, and falling over the last
    /// <paramref name="ramp"/> unless it ends there. Two tiles overlapping by exactly <paramref name="ramp"/> sum to 1.
    /// </summary>
    public static float Weight(int index, int start, int size, int length, int ramp)
    {
        var weight = 1f;
        if (start > 0 && index < ramp) weight = Math.Min(weight, (index + 0.5f) / ramp);
        if (start + size < length && index >= size - ramp) weight = Math.Min(weight, (size - index - 0.5f) / ramp);
        return weight;
    }
}
