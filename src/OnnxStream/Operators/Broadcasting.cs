using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// NumPy (multidirectional) broadcasting for the managed elementwise operators with two or three
/// operands of possibly different element types (comparisons, Where, Pow, Mod, Min/Max/Sum). Size-1
/// axes are dropped and axes that all operands step through contiguously are merged, so the inner loop
/// is a long run; large outputs are split over <see cref="OperatorContext.Parallel"/>.
/// </summary>
internal static unsafe class Broadcasting
{
    /// <summary>Outputs smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <summary>Longest inner run of one work item.</summary>
    private const long Block = 1 << 14;

    /// <summary>output = op(a, b) elementwise, for one element of each operand.</summary>
    internal interface IBinaryOp<TA, TB, TOut>
    {
        /// <summary>The operation.</summary>
        static abstract TOut Apply(TA a, TB b);
    }

    /// <summary>output = op(a, b, c) elementwise, for one element of each operand.</summary>
    internal interface ITernaryOp<TA, TB, TC, TOut>
    {
        /// <summary>The operation.</summary>
        static abstract TOut Apply(TA a, TB b, TC c);
    }

    /// <summary>The broadcast of <paramref name="shapes"/>, or an error naming them.</summary>
    public static int[] Shape(OperatorContext context, params int[][] shapes)
    {
        var rank = shapes.Max(s => s.Length);
        var shape = new int[rank];
        for (var i = 1; i <= rank; i++)
        {
            var size = 1;
            foreach (var s in shapes)
            {
                var d = i <= s.Length ? s[^i] : 1;
                if (d == 1) continue;
                if (size != 1 && size != d)
                    throw context.Error($"shapes {string.Join(", ", shapes.Select(x => AxisHelper.Format(x)))} do not broadcast");
                size = d;
            }
            shape[^i] = size;
        }
        return shape;
    }

    /// <summary>output = TOp(a, b) with broadcasting; <paramref name="output"/> has the broadcast shape.</summary>
    public static void Binary<TA, TB, TOut, TOp>(OperatorContext context, Tensor a, Tensor b, Tensor output)
        where TA : unmanaged where TB : unmanaged where TOut : unmanaged where TOp : IBinaryOp<TA, TB, TOut>
    {
        if (output.ElementCount == 0) return;
        var plan = Plan.Create(output.Shape, a.Shape, b.Shape, []);
        var pa = (nint)AxisHelper.Data(a);
        var pb = (nint)AxisHelper.Data(b);
        var po = (nint)AxisHelper.Data(output);
        plan.Run(context, (offsets, n, strides) =>
        {
            var x = (TA*)pa + offsets.A;
            var y = (TB*)pb + offsets.B;
            var o = (TOut*)po + offsets.Out;
            if (strides.A == 1 && strides.B == 1)
                for (long i = 0; i < n; i++) o[i] = TOp.Apply(x[i], y[i]);
            else if (strides.A == 1)
            {
                var yv = *y;
                for (long i = 0; i < n; i++) o[i] = TOp.Apply(x[i], yv);
            }
            else if (strides.B == 1)
            {
                var xv = *x;
                for (long i = 0; i < n; i++) o[i] = TOp.Apply(xv, y[i]);
            }
            else
            {
                var v = TOp.Apply(*x, *y);
                for (long i = 0; i < n; i++) o[i] = v;
            }
        });
    }

    /// <summary>output = TOp(a, b, c) with broadcasting; <paramref name="output"/> has the broadcast shape.</summary>
    public static void Ternary<TA, TB, TC, TOut, TOp>(OperatorContext context, Tensor a, Tensor b, Tensor c, Tensor output)
        where TA : unmanaged where TB : unmanaged where TC : unmanaged where TOut : unmanaged
        where TOp : ITernaryOp<TA, TB, TC, TOut>
    {
        if (output.ElementCount == 0) return;
        var plan = Plan.Create(output.Shape, a.Shape, b.Shape, c.Shape);
        var pa = (nint)AxisHelper.Data(a);
        var pb = (nint)AxisHelper.Data(b);
        var pc = (nint)AxisHelper.Data(c);
        var po = (nint)AxisHelper.Data(output);
        plan.Run(context, (offsets, n, strides) =>
        {
            var x = (TA*)pa + offsets.A;
            var y = (TB*)pb + offsets.B;
            var z = (TC*)pc + offsets.C;
            var o = (TOut*)po + offsets.Out;
            if (strides.A == 1 && strides.B == 1 && strides.C == 1)
                for (long i = 0; i < n; i++) o[i] = TOp.Apply(x[i], y[i], z[i]);
            else
                for (long i = 0; i < n; i++) o[i] = TOp.Apply(x[i * strides.A], y[i * strides.B], z[i * strides.C]);
        });
    }

    /// <summary>
    /// The inputs of a variadic node (Min, Max, Sum): at least one, all of one type among
    /// <paramref name="types"/>; returns the broadcast of their shapes.
    /// </summary>
    public static int[] VariadicShape(OperatorContext context, out Tensor[] inputs, params ElementType[] types)
    {
        inputs = new Tensor[context.InputCount];
        for (var i = 0; i < inputs.Length; i++) inputs[i] = context.Input(i);
        if (inputs.Length == 0) throw context.Error("needs at least one input");
        var type = inputs[0].ElementType;
        if (Array.IndexOf(types, type) < 0)
            throw context.Error($"does not support {type} inputs (supported: {string.Join(", ", types.Select(t => t.ToString().ToLowerInvariant()))})");
        foreach (var input in inputs)
        {
            if (input.ElementType != type)
                throw context.Error($"inputs must have one type, not {string.Join(", ", inputs.Select(t => t.ElementType).Distinct())}");
            if (input.Quantization is not null) throw context.Error("does not support quantized inputs");
        }
        return Shape(context, inputs.Select(input => input.Shape).ToArray());
    }

    /// <summary>
    /// output = TOp(... TOp(TOp(inputs[0], inputs[1]), inputs[2]) ...) with broadcasting: inputs[0] is
    /// broadcast into <paramref name="output"/>, then each further input is combined into it in place.
    /// </summary>
    public static void Fold<T, TOp>(OperatorContext context, Tensor[] inputs, Tensor output)
        where T : unmanaged where TOp : IBinaryOp<T, T, T>
    {
        if (output.ElementCount == 0) return;
        Binary<T, T, T, Second<T>>(context, output, inputs[0], output);
        for (var i = 1; i < inputs.Length; i++) Binary<T, T, T, TOp>(context, output, inputs[i], output);
    }

    /// <summary>
    /// <see cref="Fold{T, TOp}"/> for float16 inputs, accumulated in float32 and rounded once at the end
    /// (as ONNX Runtime computes float16 through float32).
    /// </summary>
    public static void FoldFloat16<TOp>(OperatorContext context, Tensor[] inputs, Tensor output) where TOp : IBinaryOp<float, float, float>
    {
        if (output.ElementCount == 0) return;
        using var accumulator = context.Scratch(ElementType.Float32, output.Shape);
        Binary<float, Half, float, Widen>(context, accumulator, inputs[0], accumulator);
        for (var i = 1; i < inputs.Length; i++) Binary<float, Half, float, WidenThen<TOp>>(context, accumulator, inputs[i], accumulator);
        Layout.FromFloat32(context, accumulator, output);
    }

    private readonly struct Second<T> : IBinaryOp<T, T, T>
    {
        public static T Apply(T a, T b) => b;
    }

    private readonly struct Widen : IBinaryOp<float, Half, float>
    {
        public static float Apply(float a, Half b) => (float)b;
    }

    private readonly struct WidenThen<TOp> : IBinaryOp<float, Half, float> where TOp : IBinaryOp<float, float, float>
    {
        public static float Apply(float a, Half b) => TOp.Apply(a, (float)b);
    }

    /// <summary>
    /// A comparison node (Equal, Greater, Less): two operands of one type (float32, float16, int64,
    /// int32, uint8, and bool where <paramref name="allowBool"/>), broadcast; the output is bool.
    /// </summary>
    public static void Compare<TComparison>(OperatorContext context, bool allowBool) where TComparison : IComparison
    {
        var a = context.Input(0);
        var b = context.Input(1);
        var shape = CompareShape(context, a, b, allowBool);
        var output = context.Output(0, ElementType.Bool, shape);
        switch (a.ElementType)
        {
            case ElementType.Float32: Binary<float, float, byte, CompareOp<float, TComparison>>(context, a, b, output); break;
            case ElementType.Float16: Binary<Half, Half, byte, CompareOp<Half, TComparison>>(context, a, b, output); break;
            case ElementType.Int64: Binary<long, long, byte, CompareOp<long, TComparison>>(context, a, b, output); break;
            case ElementType.Int32: Binary<int, int, byte, CompareOp<int, TComparison>>(context, a, b, output); break;
            default: Binary<byte, byte, byte, CompareOp<byte, TComparison>>(context, a, b, output); break;
        }
    }

    /// <summary>The output shape of a comparison: the broadcast of the operands, which must have one supported type.</summary>
    public static int[] CompareShape(OperatorContext context, Tensor a, Tensor b, bool allowBool)
    {
        if (a.ElementType != b.ElementType)
            throw context.Error($"A and B must have the same type, not {a.ElementType} and {b.ElementType}");
        if (a.ElementType == ElementType.Bool && !allowBool)
            throw context.Error("does not compare bool tensors (supported: float32, float16, int64, int32, uint8)");
        if (a.Quantization is not null || b.Quantization is not null)
            throw context.Error("does not compare quantized tensors");
        return Shape(context, a.Shape, b.Shape);
    }

    /// <summary>A comparison of two values of one type.</summary>
    internal interface IComparison
    {
        /// <summary>The comparison.</summary>
        static abstract bool Apply<T>(T a, T b) where T : IComparisonOperators<T, T, bool>;
    }

    private readonly struct CompareOp<T, TComparison> : IBinaryOp<T, T, byte>
        where T : IComparisonOperators<T, T, bool> where TComparison : IComparison
    {
        public static byte Apply(T a, T b) => TComparison.Apply(a, b) ? (byte)1 : (byte)0;
    }

    /// <summary>Element offsets (or strides) of the output and up to three operands.</summary>
    private readonly record struct Offsets(long Out, long A, long B, long C);

    /// <summary>One merged output axis: its size and each operand's element stride (0 where it broadcasts).</summary>
    private readonly record struct Dim(long Count, long A, long B, long C);

    private delegate void RunBody(Offsets offsets, long count, Offsets strides);

    private sealed class Plan
    {
        private Dim[] _outer = [];
        private Dim _inner;

        public static Plan Create(int[] shape, int[] a, int[] b, int[] c)
        {
            var aligned = new Dim[shape.Length];
            long sa = 1, sb = 1, sc = 1;
            for (var i = 1; i <= shape.Length; i++)
            {
                var da = i <= a.Length ? a[^i] : 1;
                var db = i <= b.Length ? b[^i] : 1;
                var dc = i <= c.Length ? c[^i] : 1;
                aligned[^i] = new Dim(shape[^i], da == 1 ? 0 : sa, db == 1 ? 0 : sb, dc == 1 ? 0 : sc);
                sa *= da;
                sb *= db;
                sc *= dc;
            }
            var dims = new List<Dim>(shape.Length);
            foreach (var dim in aligned)
            {
                if (dim.Count == 1) continue;
                if (dims.Count > 0 && dims[^1].A == dim.A * dim.Count && dims[^1].B == dim.B * dim.Count && dims[^1].C == dim.C * dim.Count)
                    dims[^1] = dim with { Count = dims[^1].Count * dim.Count };
                else dims.Add(dim);
            }
            if (dims.Count == 0) dims.Add(new Dim(1, 0, 0, 0));
            var plan = new Plan { _inner = dims[^1] };
            dims.RemoveAt(dims.Count - 1);
            plan._outer = dims.ToArray();
            return plan;
        }

        public void Run(OperatorContext context, RunBody body)
        {
            long rows = 1;
            foreach (var dim in _outer) rows *= dim.Count;
            var n = _inner.Count;
            var blocks = (n + Block - 1) / Block;
            var items = rows * blocks;
            var strides = new Offsets(1, _inner.A, _inner.B, _inner.C);
            var threads = context.Parallel.MaxDegreeOfParallelism;
            if (rows * n < ParallelThreshold || threads <= 1 || items == 1)
            {
                Items(body, strides, 0, items, blocks);
                return;
            }
            var chunks = (int)Math.Min(items, threads * 4L);
            Parallel.For(0, chunks, context.Parallel, chunk =>
                Items(body, strides, items * chunk / chunks, items * (chunk + 1) / chunks, blocks));
        }

        private void Items(RunBody body, Offsets strides, long start, long end, long blocks)
        {
            var n = _inner.Count;
            for (var item = start; item < end; item++)
            {
                var row = item / blocks;
                var first = item % blocks * Block;
                var count = Math.Min(Block, n - first);
                long a = 0, b = 0, c = 0, rest = row;
                for (var k = _outer.Length - 1; k >= 0; k--)
                {
                    var index = rest % _outer[k].Count;
                    rest /= _outer[k].Count;
                    a += index * _outer[k].A;
                    b += index * _outer[k].B;
                    c += index * _outer[k].C;
                }
                body(new Offsets(row * n + first, a + first * _inner.A, b + first * _inner.B, c + first * _inner.C), count, strides);
            }
        }
    }
}
