using System.Buffers;
using System.Numerics;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX TopK (opset 11): the K largest (largest=1, default) or smallest (largest=0) elements along
/// <c>axis</c> (default -1), K from input 1 (int64 [1]). Outputs Values (the input's type) and Indices
/// (int64), both the input's shape with the axis cut to K. Equal values are ordered lower index first,
/// as ONNX Runtime orders them. sorted=0 allows any order; the result is then the sorted one all the
/// same (ORT's unsorted order depends on its heap/quickselect choice and is not reproduced). NaN ranks
/// above every number (so it is among the largest and after all numbers among the smallest). float32,
/// float16, int64, int32. Each slice along the axis is a bounded heap of K positions: O(n log K).
/// </summary>
internal sealed unsafe class TopKOperator : IOperator
{
    /// <summary>Inputs smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var x = context.Input(0);
        var shape = InferShape(context, x, context.Input(1), out var axis, out var largest);
        var values = context.Output(0, x.ElementType, shape);
        var indices = context.Output(1, ElementType.Int64, shape);
        if (values.ElementCount == 0) return;
        var plan = new Plan
        {
            Source = (nint)AxisHelper.Data(x),
            Values = (nint)AxisHelper.Data(values),
            Indices = (nint)AxisHelper.Data(indices),
            Count = x.Shape[axis],
            K = shape[axis],
            Inner = (int)AxisHelper.Product(shape, axis + 1, shape.Length),
            Largest = largest,
        };
        var outer = AxisHelper.Product(shape, 0, axis);
        switch (x.ElementType)
        {
            case ElementType.Float32: Select<float>(context, plan, outer); break;
            case ElementType.Float16: Select<Half>(context, plan, outer); break;
            case ElementType.Int64: Select<long>(context, plan, outer); break;
            default: Select<int>(context, plan, outer); break;
        }
    }

    /// <summary>Checks the inputs and attributes; returns the shape of both outputs.</summary>
    internal static int[] InferShape(OperatorContext context, Tensor x, Tensor k, out int axis, out bool largest)
    {
        if (x.ElementType is not (ElementType.Float32 or ElementType.Float16 or ElementType.Int64 or ElementType.Int32))
            throw context.Error($"X must be float32, float16, int64 or int32, not {x.ElementType}");
        if (x.Shape.Length == 0) throw context.Error("X must have rank 1 or more, not be a scalar");
        if (k.ElementCount != 1) throw context.Error($"K must hold one value (int64 [1]), not {k}");
        axis = AxisHelper.NormalizeAxis(context, context.Attributes.GetInt("axis", -1), x.Shape.Length);
        var count = AxisHelper.ReadIndices(context, k, "K")[0];
        if (count < 0) throw context.Error($"K must not be negative, got {count}");
        if (count > x.Shape[axis])
            throw context.Error($"K {count} is larger than axis {axis} of X {AxisHelper.Format(x.Shape)} (size {x.Shape[axis]})");
        var flag = context.Attributes.GetInt("largest", 1);
        if (flag is not (0 or 1)) throw context.Error($"largest must be 0 or 1, not {flag}");
        largest = flag == 1;
        var sorted = context.Attributes.GetInt("sorted", 1);
        if (sorted is not (0 or 1)) throw context.Error($"sorted must be 0 or 1, not {sorted}");
        var shape = (int[])x.Shape.Clone();
        shape[axis] = (int)count;
        return shape;
    }

    private sealed class Plan
    {
        public nint Source, Values, Indices;
        public int Count, K, Inner;
        public bool Largest;
    }

    private static void Select<T>(OperatorContext context, Plan plan, long outer) where T : unmanaged, INumber<T>
    {
        var items = outer * plan.Inner;
        void Items(long start, long end)
        {
            var k = plan.K;
            var rented = k > 1024 ? ArrayPool<int>.Shared.Rent(k) : null;
            var heap = rented is null ? stackalloc int[k] : rented.AsSpan(0, k);
            try
            {
                for (var item = start; item < end; item++)
                {
                    var o = item / plan.Inner;
                    var i = (int)(item % plan.Inner);
                    var slice = new Slice<T>((T*)plan.Source + o * plan.Count * plan.Inner + i, plan.Inner, plan.Largest);
                    // A heap whose root is the weakest of the best K seen so far.
                    for (var j = 0; j < k; j++) heap[j] = j;
                    for (var j = k / 2 - 1; j >= 0; j--) SiftDown(slice, heap, j, k);
                    for (var j = k; j < plan.Count; j++)
                    {
                        // Later positions lose ties, so only a strictly better value replaces the root.
                        if (!slice.Better(j, heap[0])) continue;
                        heap[0] = j;
                        SiftDown(slice, heap, 0, k);
                    }
                    // Pop the weakest into the last free place: best first.
                    var outOffset = o * k * plan.Inner + i;
                    for (var size = k; size > 0; size--)
                    {
                        var j = heap[0];
                        var at = outOffset + (long)(size - 1) * plan.Inner;
                        ((T*)plan.Values)[at] = slice[j];
                        ((long*)plan.Indices)[at] = j;
                        heap[0] = heap[size - 1];
                        SiftDown(slice, heap, 0, size - 1);
                    }
                }
            }
            finally
            {
                if (rented is not null) ArrayPool<int>.Shared.Return(rented);
            }
        }

        var work = items * plan.Count;
        if (work < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism <= 1 || items == 1)
        {
            Items(0, items);
            return;
        }
        var chunks = (int)Math.Min(items, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk => Items(items * chunk / chunks, items * (chunk + 1) / chunks));
    }

    /// <summary>Restores the heap below <paramref name="i"/>: every parent is weaker than its children.</summary>
    private static void SiftDown<T>(in Slice<T> slice, Span<int> heap, int i, int size) where T : unmanaged, INumber<T>
    {
        while (true)
        {
            var weakest = i;
            var left = 2 * i + 1;
            var right = left + 1;
            if (left < size && slice.Better(heap[weakest], heap[left])) weakest = left;
            if (right < size && slice.Better(heap[weakest], heap[right])) weakest = right;
            if (weakest == i) return;
            (heap[i], heap[weakest]) = (heap[weakest], heap[i]);
            i = weakest;
        }
    }

    /// <summary>One slice along the axis, and the order TopK ranks its elements in.</summary>
    private readonly struct Slice<T>(T* start, int stride, bool largest) where T : unmanaged, INumber<T>
    {
        public T this[int j] => start[(long)j * stride];

        /// <summary>Whether position <paramref name="a"/> ranks before position <paramref name="b"/>.</summary>
        public bool Better(int a, int b)
        {
            var va = this[a];
            var vb = this[b];
            var order = largest ? Compare(va, vb) : Compare(vb, va);
            return order > 0 || (order == 0 && a < b);
        }

        /// <summary>A total order: NaN above every number, NaNs equal.</summary>
        private static int Compare(T a, T b)
        {
            if (T.IsNaN(a)) return T.IsNaN(b) ? 0 : 1;
            if (T.IsNaN(b)) return -1;
            return a > b ? 1 : a < b ? -1 : 0;
        }
    }
}
