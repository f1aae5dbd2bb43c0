namespace OnnxStream.StableDiffusion.Decoding;

/// <summary>One tile: its latent origin and size.</summary>
/// <param name="Y">First latent row.</param>
/// <param name="X">First latent column.</param>
/// <param name="Height">Latent rows.</param>
/// <param name="Width">Latent columns.</param>
public readonly record struct LatentTile(int Y, int X, int Height, int Width);

/// <summary>The tiles of a latent and the overlap their blending ramps span.</summary>
/// <param name="Tiles">The tiles, row by row.</param>
/// <param name="Overlap">The smallest overlap of two neighbouring tiles, in latent pixels (0 for one tile).</param>
public sealed record TilePlan(IReadOnlyList<LatentTile> Tiles, int Overlap);

/// <summary>
/// How a latent is cut into overlapping square tiles, as the original decodes SDXL: tiles of
/// <c>tileSize</c> overlapping their left and upper neighbours by at least a quarter of a tile (exactly a quarter
/// where the latent allows it, as 5 × 5 tiles of 32 over SDXL's 128 × 128), evenly spread so the first and last
/// end flush with the latent, blended linearly across each overlap.
/// </summary>
public static class LatentTiling
{
    /// <summary>
    /// Tile origins along one axis of <paramref name="length"/>: the fewest tiles of <paramref name="size"/> that
    /// overlap by at least <paramref name="overlap"/>, spread evenly from 0 to <c>length - size</c>; one tile of the
    /// whole length when it fits in one.
    /// </summary>
    public static int[] Origins(int length, int size, int overlap)
    {
        if (length <= size) return [0];
        var stride = size - overlap;
        var count = (length - size + stride - 1) / stride + 1;
        return Enumerable.Range(0, count).Select(i => (int)((long)i * (length - size) / (count - 1))).ToArray();
    }

    /// <summary>The tiles of a <paramref name="height"/>×<paramref name="width"/> latent.</summary>
    public static TilePlan Plan(int height, int width, int tileSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(tileSize, 4);
        var rows = Origins(height, tileSize, tileSize / 4);
        var columns = Origins(width, tileSize, tileSize / 4);
        var tiles = (from y in rows
                     from x in columns
                     select new LatentTile(y, x, Math.Min(tileSize, height), Math.Min(tileSize, width))).ToList();
        static int SmallestOverlap(int[] origins, int size) =>
            origins.Length < 2 ? int.MaxValue : origins.Zip(origins.Skip(1)).Min(p => size - (p.Second - p.First));
        var overlap = Math.Min(SmallestOverlap(rows, tileSize), SmallestOverlap(columns, tileSize));
        return new TilePlan(tiles, overlap == int.MaxValue ? 0 : overlap);
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
