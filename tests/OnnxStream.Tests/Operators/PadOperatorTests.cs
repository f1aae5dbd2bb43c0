using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Pad against ONNX Runtime: modes, negative pads, constant values, axes (opset 18), the opset-2 form, types.</summary>
internal sealed class PadOperatorTests
{
    private static readonly (int[] Shape, long[] Pads)[] Patterns =
    [
        ([3, 4], [1, 2, 2, 1]),
        ([3, 4], [0, 0, 0, 0]),
        ([2, 3, 4], [0, 1, 2, 1, 0, 3]),
        ([3, 4], [-1, 1, 0, -2]),        // negative pads crop
        ([4, 5], [1, -2, -1, 1]),        // crop, then pad within the cropped range
        ([5], [3, 2]),
        ([2, 3, 4, 5], [0, 0, 1, 2, 0, 0, 2, 1]),
        ([1, 8, 64, 64], [0, 0, 1, 1, 0, 0, 1, 1]),
    ];

    private static IEnumerable<TestCaseData> Cases() =>
        from mode in new[] { "constant", "reflect", "edge" }
        from type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32, ElementType.Bool }
        from p in Patterns
        select new TestCaseData(mode, type, p.Shape, p.Pads).SetArgDisplayNames(mode, type.ToString(), OperatorInputs.Show(p.Shape), $"[{string.Join(',', p.Pads)}]");

    [TestCaseSource(nameof(Cases))]
    public void Pad_matches_ORT(string mode, ElementType type, int[] shape, long[] pads)
    {
        var attributes = new TestAttributes().String("mode", mode);
        OperatorTestHarness.AssertMatchesOrt("Pad", [OperatorInputs.Of(type, "x", shape, 1), TestInput.Int64s("pads", pads)], attributes);
        if (mode == "constant")
            OperatorTestHarness.AssertMatchesOrt("Pad", [OperatorInputs.Of(type, "x", shape, 1), TestInput.Int64s("pads", pads), OperatorInputs.Values("value", type, [], 1)], attributes);
    }

    [Test]
    public void Default_mode_is_constant_zero() =>
        OperatorTestHarness.AssertMatchesOrt("Pad", [OperatorInputs.F32("x", [3, 4], 1), TestInput.Int64s("pads", 1, 0, 0, 2)]);

    [Test]
    public void A_constant_value_matches_ORT() =>
        OperatorTestHarness.AssertMatchesOrt("Pad", [OperatorInputs.F16("x", [3, 4], 1), TestInput.Int64s("pads", 2, 1, 1, 2), OperatorInputs.Values("value", ElementType.Float16, [], -2.5)]);

    [Test]
    public void Axes_match_ORT()
    {
        foreach (var (axes, pads) in new (long[], long[])[] { ([1], [2, 1]), ([-1, 0], [1, 0, 2, 1]), ([2, 0], [1, 1, 0, 2]) })
            foreach (var mode in new[] { "constant", "reflect", "edge" })
                OperatorTestHarness.AssertMatchesOrt("Pad",
                    [OperatorInputs.F32("x", [3, 4, 5], 1), TestInput.Int64s("pads", pads), null, TestInput.Int64s("axes", axes)],
                    new TestAttributes().String("mode", mode), opset: 18);
    }

    [Test]
    public void Wrap_matches_ORT()
    {
        foreach (var pads in new[] { new long[] { 1, 2, 2, 1 }, [3, 0, 0, 5], [-1, 1, 1, -1], [1, -2, -1, 2] })
            OperatorTestHarness.AssertMatchesOrt("Pad", [OperatorInputs.F32("x", [3, 4], 1), TestInput.Int64s("pads", pads)],
                new TestAttributes().String("mode", "wrap"), opset: 19);
    }

    [Test]
    public void Opset_2_attributes_match_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("Pad", [OperatorInputs.F32("x", [3, 4], 1)], new TestAttributes().Ints("pads", 1, 2, 0, 1).Float("value", 1.5f), opset: 10);
        OperatorTestHarness.AssertMatchesOrt("Pad", [OperatorInputs.F32("x", [3, 4], 1)], new TestAttributes().Ints("pads", 1, 2, 2, 1).String("mode", "reflect"), opset: 10);
    }

    // ORT refuses reflect pads wider than the dimension minus 1; OnnxStream keeps reflecting, as NumPy does.
    [Test]
    public void Wide_reflect_pads_keep_reflecting()
    {
        var result = OperatorTestHarness.RunOnnxStream("Pad",
            [OperatorInputs.Values("x", ElementType.Float32, [3], 1, 2, 3), TestInput.Int64s("pads", 5, 4)], new TestAttributes().String("mode", "reflect"), 1, 1);
        Assert.That(result[0].Item3, Is.EqualTo(new double[] { 2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3 }));
    }

    [Test]
    public void Errors_are_reported()
    {
        OperatorTestHarness.AssertRejected("Pad", [OperatorInputs.F32("x", [3, 4], 1), TestInput.Int64s("pads", 1, 1)], null,
            "pads [1,1] has 2 values; 4 expected for the input [3,4]");
        OperatorTestHarness.AssertRejected("Pad", [OperatorInputs.F32("x", [3, 4], 1), TestInput.Int64s("pads", 1, 1, 1, 1)], new TestAttributes().String("mode", "mirror"),
            "mode 'mirror' is not one of constant, reflect, edge, wrap");
        OperatorTestHarness.AssertRejected("Pad", [OperatorInputs.F32("x", [3, 4], 1), TestInput.Int64s("pads", -2, 0, -2, 0)], null, "give axis 0 of the input [3,4] size -1");
        OperatorTestHarness.AssertRejected("Pad", [OperatorInputs.F32("x", [3, 0], 1), TestInput.Int64s("pads", 0, 1, 0, 1)], new TestAttributes().String("mode", "edge"),
            "cannot pad axis 1 of size 0 in edge mode");
        OperatorTestHarness.AssertRejected("Pad", [OperatorInputs.F32("x", [3, 4], 1), TestInput.Int64s("pads", 1, 1, 1, 1), OperatorInputs.Values("value", ElementType.Int64, [], 1)],
            null, "constant_value must have the data's type Float32, not Int64");
    }
}
