using System.Numerics;
using OnnxStream.Interop;
using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// Add, Sub, Mul and Div with NumPy broadcasting. float32 runs on XNNPACK (ranks up to 6; higher ranks
/// in managed code); float16 Add and Mul run on XNNPACK's f16 kernels where the processor has them,
/// other float16 cases are computed in float32 and rounded; a float16 operand with a float32 one (a
/// float16 model's activation and a weight the session widened) computes in float16 with the float32
/// operand rounded, and the output is float16; int64 and int32 are computed in managed code (division
/// truncates toward zero, and dividing by zero is an error). Under static activation quantization, quantized
/// operands of Add, Sub and Mul run XNNPACK's uint8 kernels into a uint8 output (see <see cref="QuantizedOperands"/>);
/// otherwise quantized operands are dequantized.
/// </summary>
internal abstract unsafe class BinaryElementwiseOperator : IOperator
{
    /// <summary>Managed loops below this many output elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    private static readonly Lazy<bool> HasFloat16 = new(() => NativeRuntime.SupportsFloat16);

    /// <summary>The operation this ONNX operator computes.</summary>
    private protected abstract BinaryOperation Operation { get; }

    /// <inheritdoc />
    public bool TakesQuantized(int index) => Operation != BinaryOperation.Divide;

    /// <inheritdoc />
    /// <remarks>Every path reads a[i] and b[i] before writing output[i] (or computes from converted copies).</remarks>
    public bool WritesOverInput(int index) => true;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var a = context.Input(0);
        var b = context.Input(1);
        if (!QuantizedOperands.IsQuantized(a) && !QuantizedOperands.IsQuantized(b))
        {
            Compute(context, a, b);
            return;
        }
        if (QuantizedOperands.ForBinary(context, Operation, a, b) is { } outputQuantization)
        {
            var output = context.Output(0, ElementType.UInt8, InferShape(context, a.Shape, b.Shape), outputQuantization);
            if (output.ElementCount > 0)
                BinaryKernels.RunQUInt8(context.Pool, Operation, a.Buffer<byte>(), a.Shape, a.Quantization!.Value,
                    b.Buffer<byte>(), b.Shape, b.Quantization!.Value, output.Buffer<byte>(), outputQuantization);
            return;
        }
        var wideA = Layout.ToFloat32(context, a, "A", out var ownsA);
        var wideB = Layout.ToFloat32(context, b, "B", out var ownsB);
        try
        {
            Compute(context, wideA, wideB);
        }
        finally
        {
            if (ownsA) wideA.Dispose();
            if (ownsB) wideB.Dispose();
        }
    }

    /// <summary>The operation on unquantized operands.</summary>
    private void Compute(OperatorContext context, Tensor a, Tensor b)
    {
        var shape = InferShape(context, a.Shape, b.Shape);
        switch (a.ElementType, b.ElementType)
        {
            case (ElementType.Float32, ElementType.Float32):
                RunFloat32(context, a, b, shape, context.Output(0, ElementType.Float32, shape));
                break;
            case (ElementType.Float16, ElementType.Float16):
                RunFloat16(context, a, b, shape, context.Output(0, ElementType.Float16, shape));
                break;
            case (ElementType.Float16, ElementType.Float32):
            case (ElementType.Float32, ElementType.Float16):
                // A float16 model's activation meeting a weight the session widened: the result stays float16.
                RunMixed(context, a, b, shape, context.Output(0, ElementType.Float16, shape));
                break;
            case (ElementType.Int64, ElementType.Int64):
                RunInteger<long>(context, a, b, shape);
                break;
            case (ElementType.Int32, ElementType.Int32):
                RunInteger<int>(context, a, b, shape);
                break;
            case (ElementType.Int64, ElementType.Float32 or ElementType.Float16):
            case (ElementType.Float32 or ElementType.Float16, ElementType.Int64):
                RunIntegerWithFloatConstant(context, a, b, shape);
                break;
            default:
                throw context.Error($"does not support {a.ElementType} and {b.ElementType} operands " +
                    "(supported: float32, float16, float16 with float32, int64, int32, int64 with a float constant)");
        }
    }

    /// <summary>
    /// The original converter stores an int64 constant operand as float32 (and its fp16 mode then as
    /// float16), so int64 with float means shape arithmetic: round the float operand to int64 and compute in int64.
    /// </summary>
    private void RunIntegerWithFloatConstant(OperatorContext context, Tensor a, Tensor b, int[] shape)
    {
        var floatOperand = a.ElementType == ElementType.Int64 ? b : a;
        using var asInteger = context.Scratch(ElementType.Int64, floatOperand.Shape);
        var target = asInteger.Span<long>();
        if (floatOperand.ElementType == ElementType.Float32)
        {
            var source = floatOperand.Span<float>();
            for (var i = 0; i < target.Length; i++) target[i] = (long)MathF.Round(source[i]);
        }
        else
        {
            var source = floatOperand.Span<Half>();
            for (var i = 0; i < target.Length; i++) target[i] = (long)Math.Round((double)source[i]);
        }
        if (ReferenceEquals(floatOperand, a)) RunInteger<long>(context, asInteger, b, shape);
        else RunInteger<long>(context, a, asInteger, shape);
    }

    /// <summary>The output shape: the NumPy broadcast of the operands' shapes.</summary>
    public static int[] InferShape(OperatorContext context, int[] a, int[] b) =>
        Shapes.TryBroadcast(a, b, out var shape)
            ? shape
            : throw context.Error($"shapes {AxisHelper.Format(a)} and {AxisHelper.Format(b)} do not broadcast");

    private void RunFloat32(OperatorContext context, Tensor a, Tensor b, int[] shape, Tensor output)
    {
        if (output.ElementCount == 0) return;
        // XNNPACK clamps its result to [-inf, +inf], which turns NaN into -inf: NaN operands take the managed loops, as ONNX Runtime propagates NaN.
        if (a.Shape.Length <= (int)OsnLimits.MaxDims && b.Shape.Length <= (int)OsnLimits.MaxDims &&
            !NonFiniteScan.HasNaN(a.Span<float>(), context.Pool.ThreadCount) && !NonFiniteScan.HasNaN(b.Span<float>(), context.Pool.ThreadCount))
            BinaryKernels.Run(context.Pool, Operation, a.Buffer<float>(), a.Shape, b.Buffer<float>(), b.Shape, output.Buffer<float>());
        else
            switch (Operation)
            {
                case BinaryOperation.Add: Broadcast<float, AddOp<float>>(context, a, b, shape, output); break;
                case BinaryOperation.Subtract: Broadcast<float, SubtractOp<float>>(context, a, b, shape, output); break;
                case BinaryOperation.Multiply: Broadcast<float, MultiplyOp<float>>(context, a, b, shape, output); break;
                default: Broadcast<float, DivideOp<float>>(context, a, b, shape, output); break;
            }
    }

    private void RunFloat16(OperatorContext context, Tensor a, Tensor b, int[] shape, Tensor output)
    {
        if (output.ElementCount == 0) return;
        if (Operation is BinaryOperation.Add or BinaryOperation.Multiply && HasFloat16.Value &&
            a.Shape.Length <= (int)OsnLimits.MaxDims && b.Shape.Length <= (int)OsnLimits.MaxDims)
        {
            BinaryKernels.Run(context.Pool, Operation, a.Buffer<Half>(), a.Shape, b.Buffer<Half>(), b.Shape, output.Buffer<Half>());
            return;
        }
        using var wideA = Widen(context, a);
        using var wideB = Widen(context, b);
        using var wideOutput = context.Scratch(ElementType.Float32, shape);
        RunFloat32(context, wideA, wideB, shape, wideOutput);
        ConversionKernels.ToFloat16(context.Pool, output.ElementCount, wideOutput.Buffer<float>(), output.Buffer<Half>());
    }

    private void RunMixed(OperatorContext context, Tensor a, Tensor b, int[] shape, Tensor output)
    {
        if (output.ElementCount == 0) return;
        var wide = a.ElementType == ElementType.Float32 ? a : b;
        using var narrowed = context.Scratch(ElementType.Float16, wide.Shape);
        ConversionKernels.ToFloat16(context.Pool, wide.ElementCount, wide.Buffer<float>(), narrowed.Buffer<Half>());
        RunFloat16(context, ReferenceEquals(wide, a) ? narrowed : a, ReferenceEquals(wide, b) ? narrowed : b, shape, output);
    }

    private static Tensor Widen(OperatorContext context, Tensor half)
    {
        var wide = context.Scratch(ElementType.Float32, half.Shape);
        try
        {
            ConversionKernels.ToFloat32(context.Pool, half.ElementCount, half.Buffer<Half>(), wide.Buffer<float>());
            return wide;
        }
        catch
        {
            wide.Dispose();
            throw;
        }
    }

    private void RunInteger<T>(OperatorContext context, Tensor a, Tensor b, int[] shape)
        where T : unmanaged, IBinaryInteger<T>, ISignedNumber<T>
    {
        if (Operation == BinaryOperation.Divide && Shapes.ElementCount(shape) > 0 && b.Span<T>().Contains(T.Zero))
            throw context.Error($"integer division by zero (divisor {b})");
        var output = context.Output(0, a.ElementType, shape);
        if (output.ElementCount == 0) return;
        switch (Operation)
        {
            case BinaryOperation.Add: Broadcast<T, AddOp<T>>(context, a, b, shape, output); break;
            case BinaryOperation.Subtract: Broadcast<T, SubtractOp<T>>(context, a, b, shape, output); break;
            case BinaryOperation.Multiply: Broadcast<T, MultiplyOp<T>>(context, a, b, shape, output); break;
            default: Broadcast<T, IntegerDivideOp<T>>(context, a, b, shape, output); break;
        }
    }

    /// <summary>output = a (op) b with NumPy broadcasting, in managed code, any rank.</summary>
    private static void Broadcast<T, TOp>(OperatorContext context, Tensor a, Tensor b, int[] shape, Tensor output)
        where T : unmanaged where TOp : struct, IOp<T>
    {
        // Per output axis: its size and the operands' element strides (0 where they broadcast).
        var dims = new List<(long Count, long A, long B)>(shape.Length);
        long strideA = 1, strideB = 1;
        var aligned = new (long Count, long A, long B)[shape.Length];
        for (var i = 1; i <= shape.Length; i++)
        {
            var da = i <= a.Shape.Length ? a.Shape[^i] : 1;
            var db = i <= b.Shape.Length ? b.Shape[^i] : 1;
            aligned[^i] = (shape[^i], da == 1 ? 0 : strideA, db == 1 ? 0 : strideB);
            strideA *= da;
            strideB *= db;
        }
        // Drop size-1 axes; merge an axis into the next when both operands step through them contiguously.
        foreach (var dim in aligned)
        {
            if (dim.Count == 1) continue;
            if (dims.Count > 0 && dims[^1].A == dim.A * dim.Count && dims[^1].B == dim.B * dim.Count)
                dims[^1] = (dims[^1].Count * dim.Count, dim.A, dim.B);
            else dims.Add(dim);
        }
        if (dims.Count == 0) dims.Add((1, 0, 0));
        var inner = dims[^1];
        dims.RemoveAt(dims.Count - 1);
        var outer = dims.ToArray();
        long rows = 1;
        foreach (var dim in outer) rows *= dim.Count;

        var pa = (nint)AxisHelper.Data(a);
        var pb = (nint)AxisHelper.Data(b);
        var po = (nint)AxisHelper.Data(output);
        var total = rows * inner.Count;
        if (total < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism <= 1 || rows == 1)
        {
            Rows<T, TOp>(pa, pb, po, outer, inner, 0, rows);
            return;
        }
        var chunks = (int)Math.Min(rows, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk =>
            Rows<T, TOp>(pa, pb, po, outer, inner, rows * chunk / chunks, rows * (chunk + 1) / chunks));
    }

    private static void Rows<T, TOp>(nint pa, nint pb, nint po, (long Count, long A, long B)[] outer,
        (long Count, long A, long B) inner, long start, long end) where T : unmanaged where TOp : struct, IOp<T>
    {
        var n = inner.Count;
        for (var row = start; row < end; row++)
        {
            long offsetA = 0, offsetB = 0, rest = row;
            for (var k = outer.Length - 1; k >= 0; k--)
            {
                var index = rest % outer[k].Count;
                rest /= outer[k].Count;
                offsetA += index * outer[k].A;
                offsetB += index * outer[k].B;
            }
            var x = (T*)pa + offsetA;
            var y = (T*)pb + offsetB;
            var o = (T*)po + row * n;
            if (inner.A != 0 && inner.B != 0)
                for (long i = 0; i < n; i++) o[i] = TOp.Apply(x[i], y[i]);
            else if (inner.A != 0)
            {
                var yv = *y;
                for (long i = 0; i < n; i++) o[i] = TOp.Apply(x[i], yv);
            }
            else if (inner.B != 0)
            {
                var xv = *x;
                for (long i = 0; i < n; i++) o[i] = TOp.Apply(xv, y[i]);
            }
            else
            {
                var v = TOp.Apply(*x, *y);
                for (long i = 0; i < n; i++) o[i] = v;
            }
        }
    }

    private interface IOp<T>
    {
        static abstract T Apply(T x, T y);
    }

    private readonly struct AddOp<T> : IOp<T> where T : INumberBase<T>
    {
        public static T Apply(T x, T y) => x + y;
    }

    private readonly struct SubtractOp<T> : IOp<T> where T : INumberBase<T>
    {
        public static T Apply(T x, T y) => x - y;
    }

    private readonly struct MultiplyOp<T> : IOp<T> where T : INumberBase<T>
    {
        public static T Apply(T x, T y) => x * y;
    }

    private readonly struct DivideOp<T> : IOp<T> where T : INumberBase<T>
    {
        public static T Apply(T x, T y) => x / y;
    }

    /// <summary>Truncating division; MinValue / -1 wraps (as C does on most machines) instead of trapping.</summary>
    private readonly struct IntegerDivideOp<T> : IOp<T> where T : IBinaryInteger<T>, ISignedNumber<T>
    {
        public static T Apply(T x, T y) => y == T.NegativeOne ? -x : x / y;
    }
}
