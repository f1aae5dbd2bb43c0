using OnnxStream.Kernels;
using OnnxStream.Operators;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Kernels;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// MatMul with a weight B as stored (float16 or uint8, not widened by the session), against ONNX Runtime: packed in
/// slices of output columns when weights are not kept (the slice budget forced small), whole when kept (Ram), or
/// multiplied directly when A has few rows; the output type follows A.
/// </summary>
internal sealed class MatMulWeightSlicesTests
{
    // 2 threads × 16 columns of 48 float32 rows: slices of 16, 16 and 8 of the 40 columns.
    private const long SixteenColumns = 2 * 16 * 48 * 4;
    private StoredWeightHarness _harness = null!;

    [OneTimeSetUp]
    public void CreateHarness() => _harness = new StoredWeightHarness();

    [OneTimeTearDown]
    public void DisposeHarness() => _harness.Dispose();

    private static StoredOperand A(params int[] shape) => StoredOperand.Activation(TestInput.Floats("a", shape, 1));

    private static TestInput B => TestInput.Floats("b", [48, 40], 2, -0.2f, 0.2f);

    [Test]
    public void Float16_weight_slices_match_ORT() =>
        _harness.AssertMatchesOrt(new MatMulOperator(), "MatMul", new TestAttributes(), [A(2, 20, 48), StoredOperand.Float16Weight(B)], SixteenColumns);

    [Test]
    public void A_kept_weight_is_prepared_whole_once_and_matches_ORT_on_every_run()
    {
        // float16: its transpose kept (tracked) for the direct kernel.
        var prepared = new PreparedOperatorCache();
        _harness.AssertMatchesOrt(new MatMulOperator(), "MatMul", new TestAttributes(), [A(2, 20, 48), StoredOperand.Float16Weight(B)], SixteenColumns,
            prepared, runs: 2);
        Assert.That(prepared.Count, Is.EqualTo(1));
        Assert.That(_harness.Allocator.CurrentBytes, Is.EqualTo(B.Data.Length * sizeof(ushort)), "the kept transpose of B");
        prepared.Dispose();
        Assert.That(_harness.Allocator.CurrentBytes, Is.Zero, "tensors leaked");
    }

    [Test]
    public void Quantized_uint8_weight_slices_are_dequantized() =>
        _harness.AssertMatchesOrt(new MatMulOperator(), "MatMul", new TestAttributes(),
            [A(37, 48), StoredOperand.UInt8Weight(B, Quantization.FromRange(-0.2f, 0.2f)!.Value)], SixteenColumns);

    [Test]
    public void A_few_rows_multiply_the_widened_weight_and_stay_float32() =>
        // 3 rows ≤ 8 per thread: no packing. A float16 weight does not make the float32 product float16.
        _harness.AssertMatchesOrt(new MatMulOperator(), "MatMul", new TestAttributes(), [A(1, 3, 48), StoredOperand.Float16Weight(B)], SixteenColumns);

    [Test]
    public void Float16_activations_with_weight_slices_give_float16() =>
        _harness.AssertMatchesOrt(new MatMulOperator(), "MatMul", new TestAttributes(),
            [StoredOperand.Float16Activation(TestInput.Floats("a", [40, 48], 3)), StoredOperand.Float32Weight(B)],
            SixteenColumns, relative: 2e-3, absolute: 2e-3);

    [Test]
    public void Float16_arithmetic_weight_slices_match_ORT()
    {
        Reference.RequireFloat16();
        _harness.AssertMatchesOrt(new MatMulOperator(), "MatMul", new TestAttributes(),
            [StoredOperand.Float16Activation(TestInput.Floats("a", [40, 48], 4)), StoredOperand.Float16Weight(B)],
            SixteenColumns / 2, float16Arithmetic: true, relative: 1e-2, absolute: 1e-2);
    }
}
