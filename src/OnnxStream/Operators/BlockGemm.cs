using System.Numerics;
using System.Runtime.CompilerServices;

namespace OnnxStream.Operators;

/// <summary>
/// A single-threaded float32 matrix product for small, cache-resident blocks (fused attention's score and
/// value blocks, one per worker thread): C [m, n] (+)= A [m, k] · B [k, n], row-major with leading dimensions,
/// n padded to whole SIMD vectors. Register tiles of 6 rows × 2 vectors (12 accumulators, which with the two B
/// vectors and a broadcast A value fit the 16 registers of AVX2): each B row loaded once per tile.
/// </summary>
internal static unsafe class BlockGemm
{
    /// <summary>SIMD width in floats: <c>n</c> of <see cref="Multiply"/> is a multiple of it (callers pad B and C).</summary>
    public static int Width => Vector<float>.Count;

    /// <summary>C = A·B, or C += A·B when <paramref name="accumulate"/>; <paramref name="n"/> is a multiple of <see cref="Width"/>.</summary>
    public static void Multiply(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        if (n % Width != 0) throw new ArgumentException($"{n} columns are not a multiple of the SIMD width {Width}", nameof(n));
        var w = Width;
        var row = 0;
        for (; row + 6 <= m; row += 6)
        {
            var column = 0;
            for (; column + 2 * w <= n; column += 2 * w)
                Tile6x2(k, a + (long)row * lda, lda, b + column, ldb, c + (long)row * ldc + column, ldc, accumulate);
            for (var r = row; r < row + 6 && column < n; r++)
                Tile1x1(k, a + (long)r * lda, b + column, ldb, c + (long)r * ldc + column, accumulate);
        }
        for (; row < m; row++)
            for (var column = 0; column < n; column += w)
                Tile1x1(k, a + (long)row * lda, b + column, ldb, c + (long)row * ldc + column, accumulate);
    }

    private static void Tile6x2(int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        var w = Width;
        Vector<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* a0 = a, a1 = a + lda, a2 = a + 2L * lda, a3 = a + 3L * lda, a4 = a + 4L * lda, a5 = a + 5L * lda;
        for (var p = 0; p < k; p++)
        {
            var bRow = b + (long)p * ldb;
            var b0 = Load(bRow);
            var b1 = Load(bRow + w);
            var x = new Vector<float>(a0[p]);
            c00 = Vector.MultiplyAddEstimate(x, b0, c00);
            c01 = Vector.MultiplyAddEstimate(x, b1, c01);
            x = new Vector<float>(a1[p]);
            c10 = Vector.MultiplyAddEstimate(x, b0, c10);
            c11 = Vector.MultiplyAddEstimate(x, b1, c11);
            x = new Vector<float>(a2[p]);
            c20 = Vector.MultiplyAddEstimate(x, b0, c20);
            c21 = Vector.MultiplyAddEstimate(x, b1, c21);
            x = new Vector<float>(a3[p]);
            c30 = Vector.MultiplyAddEstimate(x, b0, c30);
            c31 = Vector.MultiplyAddEstimate(x, b1, c31);
            x = new Vector<float>(a4[p]);
            c40 = Vector.MultiplyAddEstimate(x, b0, c40);
            c41 = Vector.MultiplyAddEstimate(x, b1, c41);
            x = new Vector<float>(a5[p]);
            c50 = Vector.MultiplyAddEstimate(x, b0, c50);
            c51 = Vector.MultiplyAddEstimate(x, b1, c51);
        }
        Store(c, c00, accumulate);
        Store(c + w, c01, accumulate);
        Store(c + ldc, c10, accumulate);
        Store(c + ldc + w, c11, accumulate);
        Store(c + 2L * ldc, c20, accumulate);
        Store(c + 2L * ldc + w, c21, accumulate);
        Store(c + 3L * ldc, c30, accumulate);
        Store(c + 3L * ldc + w, c31, accumulate);
        Store(c + 4L * ldc, c40, accumulate);
        Store(c + 4L * ldc + w, c41, accumulate);
        Store(c + 5L * ldc, c50, accumulate);
        Store(c + 5L * ldc + w, c51, accumulate);
    }

    private static void Tile1x1(int k, float* a, float* b, int ldb, float* c, bool accumulate)
    {
        Vector<float> sum = default;
        for (var p = 0; p < k; p++) sum = Vector.MultiplyAddEstimate(new Vector<float>(a[p]), Load(b + (long)p * ldb), sum);
        Store(c, sum, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> Load(float* p) => Unsafe.ReadUnaligned<Vector<float>>(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* p, Vector<float> value, bool accumulate) =>
        Unsafe.WriteUnaligned(p, accumulate ? value + Load(p) : value);
}
