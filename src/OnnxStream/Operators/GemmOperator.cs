using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Gemm: Y = alpha · A' · B' + beta · C, with A' = transA ? Aᵀ : A ([M, K]), B' = transB ? Bᵀ : B
/// ([K, N]) and C unidirectionally broadcast to [M, N] (optional). The product runs the shim's matmul in
/// float32 (B transposed in the kernel itself; a transposed A is copied first); float16 in and out is
/// widened and rounded. The output is float16 when A is. With the Ram provider a weight B is packed once
/// into an XNNPACK fully-connected operator kept for later runs.
/// </summary>
internal sealed unsafe class GemmOperator : IOperator
{
    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var a = context.Input(0);
        var b = context.Input(1);
        var c = context.OptionalInput(2);
        var plan = InferShape(context, a, b, c);
        var output = context.Output(0, plan.OutputType, [plan.M, plan.N]);
        if (output.ElementCount == 0) return;

        var scratch = new List<Tensor>();
        try
        {
            var result = output.ElementType == ElementType.Float32 ? output : Track(scratch, context.Scratch(ElementType.Float32, [plan.M, plan.N]));
            var y = result.Span<float>();
            if (plan.K > 0)
            {
                var af = Layout.ToFloat32(context, a, "A", out var ownsA);
                if (ownsA) scratch.Add(af);
                if (plan.TransA && plan.M > 1 && plan.K > 1)
                {
                    var transposed = Track(scratch, context.Scratch(ElementType.Float32, [plan.M, plan.K]));
                    Layout.NchwToNhwc<float>(af.Span<float>(), transposed.Span<float>(), 1, plan.K, plan.M, context.Pool);
                    af = transposed;
                }
                var bf = Layout.ToFloat32(context, b, "B", out var ownsB);
                if (ownsB) scratch.Add(bf);
                if (context.KeepsPreparedOperators && context.IsWeight(1))
                {
                    // Ram provider: B packed once, kept for later runs.
                    var weights = bf;
                    var fullyConnected = context.Prepare(() => FullyConnectedOperator.CreateFloat32(plan.K, plan.N, weights.Span<float>(),
                        transposeWeights: !plan.TransB), out _);
                    fullyConnected.Run(context.Pool, plan.M, af.Buffer<float>(), result.Buffer<float>());
                }
                else
                    BatchMatMulKernel.Run(context.Pool, new BatchMatMulShape(1, plan.M, plan.K, plan.N, TransposeB: plan.TransB),
                        (float*)AxisHelper.Data(af), (float*)AxisHelper.Data(bf), (float*)AxisHelper.Data(result));
                if (plan.Alpha != 1) TensorPrimitives.Multiply(y, plan.Alpha, y);
            }
            if (c is not null && plan.Beta != 0) AddScaledC(context, c, plan, y, scratch);
            if (result != output) Layout.FromFloat32(context, result, output);
        }
        finally
        {
            foreach (var tensor in scratch) tensor.Dispose();
        }
    }

    /// <summary>y += beta · C, C broadcast from a scalar, [N], [1, N], [M, 1] or [M, N].</summary>
    private static void AddScaledC(OperatorContext context, Tensor c, GemmPlan plan, Span<float> y, List<Tensor> scratch)
    {
        var cf = Layout.ToFloat32(context, c, "C", out var ownsC);
        if (ownsC) scratch.Add(cf);
        var values = cf.Span<float>();
        var (rows, cols) = plan.CShape;
        for (var i = 0; i < plan.M; i++)
        {
            var row = y.Slice(i * plan.N, plan.N);
            var source = values.Slice(rows == 1 ? 0 : i * cols, cols);
            if (cols == 1)
                TensorPrimitives.Add(row, plan.Beta * source[0], row);
            else if (plan.Beta == 1)
                TensorPrimitives.Add(row, source, row);
            else
                TensorPrimitives.FusedMultiplyAdd(source, plan.Beta, row, row);
        }
    }

    private static Tensor Track(List<Tensor> scratch, Tensor tensor)
    {
        scratch.Add(tensor);
        return tensor;
    }

    /// <summary>What a Gemm computes; <c>CShape</c> is C as [rows, cols] with rows ∈ {1, M} and cols ∈ {1, N}.</summary>
    internal sealed record GemmPlan(ElementType OutputType, int M, int K, int N, bool TransA, bool TransB,
        float Alpha, float Beta, (int Rows, int Cols) CShape);

    /// <summary>Checks the inputs and attributes and infers the output [M, N].</summary>
    internal static GemmPlan InferShape(OperatorContext context, Tensor a, Tensor b, Tensor? c)
    {
        foreach (var (tensor, name) in new[] { (a, "A"), (b, "B") })
        {
            if (tensor.Shape.Length != 2)
                throw context.Error($"{name} must be 2-D, got {AxisHelper.Format(tensor.Shape)}");
            if (!IsFloat(tensor))
                throw context.Error($"{name} must be float32 or float16, not {tensor.ElementType}");
        }
        var transA = context.Flag("transA");
        var transB = context.Flag("transB");
        int m = transA ? a.Shape[1] : a.Shape[0], k = transA ? a.Shape[0] : a.Shape[1];
        int kb = transB ? b.Shape[1] : b.Shape[0], n = transB ? b.Shape[0] : b.Shape[1];
        if (k != kb)
            throw context.Error($"A {AxisHelper.Format(a.Shape)} (transA {(transA ? 1 : 0)}) has K = {k} but B {AxisHelper.Format(b.Shape)} (transB {(transB ? 1 : 0)}) has K = {kb}");

        var cShape = (1, 1);
        if (c is not null)
        {
            if (!IsFloat(c)) throw context.Error($"C must be float32 or float16, not {c.ElementType}");
            var dims = c.Shape;
            if (dims.Length > 2) throw context.Error($"C must have at most 2 dimensions, got {AxisHelper.Format(dims)}");
            int rows = dims.Length == 2 ? dims[0] : 1, cols = dims.Length >= 1 ? dims[^1] : 1;
            if (rows != 1 && rows != m || cols != 1 && cols != n)
                throw context.Error($"C {AxisHelper.Format(dims)} does not broadcast to [{m},{n}]");
            cShape = (rows, cols);
        }
        var type = a.ElementType == ElementType.Float16 ? ElementType.Float16 : ElementType.Float32;
        return new GemmPlan(type, m, k, n, transA, transB, context.Attributes.GetFloat("alpha", 1f),
            context.Attributes.GetFloat("beta", 1f), cShape);
    }

    private static bool IsFloat(Tensor t) =>
        t.ElementType is ElementType.Float32 or ElementType.Float16 || t.ElementType == ElementType.UInt8 && t.Quantization is not null;

}
