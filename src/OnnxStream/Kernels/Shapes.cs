namespace OnnxStream.Kernels;

/// <summary>Shape arithmetic shared by the kernels.</summary>
public static class Shapes
{
    /// <summary>Product of the dimensions (1 for a scalar).</summary>
    public static long ElementCount(ReadOnlySpan<int> shape)
    {
        long count = 1;
        foreach (var dimension in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(dimension, nameof(shape));
            count *= dimension;
        }
        return count;
    }

    /// <summary>Whether a tensor of <paramref name="shape"/> (dimensions not negative) has at most int.MaxValue elements, the most one holds.</summary>
    public static bool FitsInTensor(ReadOnlySpan<int> shape)
    {
        long count = 1;
        foreach (var dimension in shape) count = Math.Min((long)int.MaxValue + 1, count * dimension); // saturates, never overflows
        return count <= int.MaxValue;
    }

    /// <summary>The NumPy broadcast of two shapes, or false if some axis has two sizes that are not 1.</summary>
    public static bool TryBroadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b, out int[] shape)
    {
        shape = new int[Math.Max(a.Length, b.Length)];
        for (var i = 1; i <= shape.Length; i++)
        {
            var da = i <= a.Length ? a[^i] : 1;
            var db = i <= b.Length ? b[^i] : 1;
            if (da != db && da != 1 && db != 1) return false;
            shape[^i] = da == 1 ? db : da;
        }
        return true;
    }

    internal static void ToNative(ReadOnlySpan<int> shape, Span<nuint> native)
    {
        for (var i = 0; i < shape.Length; i++) native[i] = (nuint)shape[i];
    }
}
