using Google.Protobuf;
using Onnx;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// Shape, ConstantOfShape, Expand, Range, Unsqueeze, Squeeze, Flatten, Tile and Identity against ONNX
/// Runtime, and their errors.
/// </summary>
internal sealed class ShapeOperatorTests
{
    private static readonly ElementType[] AllTypes =
        [ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32, ElementType.UInt8, ElementType.Bool];

    private static TestInput Shape(params long[] values) => TestInput.Int64s("shape", values);

    // ---- Shape ----

    [Test]
    public void Shape_matches_ORT()
    {
        foreach (var shape in new[] { new[] { 2, 3, 4, 5 }, [7], [], [0, 3] })
            OperatorTestHarness.AssertMatchesOrt("Shape", [OperatorInputs.F32("x", shape, 1)]);
        OperatorTestHarness.AssertMatchesOrt("Shape", [OperatorInputs.Bool("x", [2, 3], 1)]);
    }

    [Test]
    public void Shape_start_and_end_match_ORT()
    {
        foreach (var (start, end) in new (long?, long?)[] { (1, null), (null, -1), (-3, -1), (-100, 100), (2, 1), (4, 4), (0, 0), (1, 3) })
        {
            var attributes = new TestAttributes();
            if (start is { } s) attributes.Int("start", s);
            if (end is { } e) attributes.Int("end", e);
            OperatorTestHarness.AssertMatchesOrt("Shape", [OperatorInputs.F32("x", [2, 3, 4, 5], 1)], attributes, opset: 15);
        }
    }

    // ---- ConstantOfShape ----

    /// <summary>A one-element TENSOR attribute for ORT, with the given text for OnnxStream.</summary>
    private static TestAttributes Value(ElementType type, double value, string text, string? dtype = null)
    {
        var tensor = new TensorProto { Dims = { 1 } };
        switch (type)
        {
            case ElementType.Float32: tensor.DataType = (int)TensorProto.Types.DataType.Float; tensor.FloatData.Add((float)value); break;
            case ElementType.Float16:
                tensor.DataType = (int)TensorProto.Types.DataType.Float16;
                tensor.Int32Data.Add(BitConverter.HalfToUInt16Bits((Half)value));
                break;
            case ElementType.Int64: tensor.DataType = (int)TensorProto.Types.DataType.Int64; tensor.Int64Data.Add((long)value); break;
            case ElementType.Int32: tensor.DataType = (int)TensorProto.Types.DataType.Int32; tensor.Int32Data.Add((int)value); break;
            case ElementType.UInt8: tensor.DataType = (int)TensorProto.Types.DataType.Uint8; tensor.Int32Data.Add((int)value); break;
            default: tensor.DataType = (int)TensorProto.Types.DataType.Bool; tensor.Int32Data.Add(value != 0 ? 1 : 0); break;
        }
        var attributes = new TestAttributes();
        attributes.Protos.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = tensor });
        attributes.Text["value"] = text;
        if (dtype is not null) attributes.Text["value.dtype"] = dtype;
        return attributes;
    }

    private static string TypeName(ElementType type) => type switch
    {
        ElementType.Float32 => "float32",
        ElementType.Float16 => "float16",
        ElementType.Int64 => "int64",
        ElementType.Int32 => "int32",
        ElementType.UInt8 => "uint8",
        _ => "bool",
    };

    [Test]
    public void ConstantOfShape_default_is_float32_zero()
    {
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(2, 3)]);
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape()]);
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(4, 0)]);
    }

    [Test]
    public void ConstantOfShape_plain_text_is_float32() =>
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(3, 1, 2)], Value(ElementType.Float32, 2.5, "2.5"));

    /// <summary>The original converter writes an int64 value bare and a float one as Python's str(float).</summary>
    [Test]
    public void ConstantOfShape_plain_integer_text_is_int64_and_python_float_text_float32()
    {
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(4)], Value(ElementType.Int64, 1, "1"));
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(4)], Value(ElementType.Int64, -3, "-3"));
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(4)], Value(ElementType.Float32, 1, "1.0"));
    }

    private static IEnumerable<TestCaseData> ValueCases() =>
        from type in AllTypes
        from form in new[] { "prefix", "dtype" }
        select new TestCaseData(type, form).SetArgDisplayNames(type.ToString(), form);

    [TestCaseSource(nameof(ValueCases))]
    public void ConstantOfShape_typed_values_match_ORT(ElementType type, string form)
    {
        var value = type == ElementType.Bool ? 1 : type == ElementType.UInt8 ? 200 : type is ElementType.Float32 or ElementType.Float16 ? -1.75 : -7;
        var text = value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var attributes = form == "prefix" ? Value(type, value, $"{TypeName(type)}:{text}") : Value(type, value, text, TypeName(type));
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(2, 3)], attributes);
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape()], attributes);
    }

    [Test]
    public void ConstantOfShape_special_values_match_ORT()
    {
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(2)], Value(ElementType.Float32, double.NegativeInfinity, "-inf"));
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(2)], Value(ElementType.Float32, double.NaN, "nan"));
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(2)], Value(ElementType.Int64, long.MaxValue, "int64:9223372036854775807"));
        OperatorTestHarness.AssertMatchesOrt("ConstantOfShape", [Shape(2)], Value(ElementType.Bool, 1, "bool:true"));
    }

    [Test]
    public void ConstantOfShape_rejects_bad_values()
    {
        static TestAttributes Text(string value, string? dtype = null)
        {
            var attributes = new TestAttributes();
            attributes.Text["value"] = value;
            if (dtype is not null) attributes.Text["value.dtype"] = dtype;
            return attributes;
        }
        OperatorTestHarness.AssertRejected("ConstantOfShape", [Shape(2)], Text("int64:1.5"), "'1.5' is not an integer");
        OperatorTestHarness.AssertRejected("ConstantOfShape", [Shape(2)], Text("double:1"), "unknown type 'double'");
        OperatorTestHarness.AssertRejected("ConstantOfShape", [Shape(2)], Text("1,2"), "must hold exactly one value");
        OperatorTestHarness.AssertRejected("ConstantOfShape", [Shape(2)], Text("300", "uint8"), "300 is out of range");
        OperatorTestHarness.AssertRejected("ConstantOfShape", [Shape(2, -1)], null, "invalid dimension -1");
        OperatorTestHarness.AssertRejected("ConstantOfShape", [new TestInput("shape", ElementType.Int32, [1], new[] { 2 })], null, "input must be int64");
    }

    // ---- Expand ----

    private static readonly (int[] Input, long[] Shape)[] ExpandPatterns =
    [
        ([3, 1], [2, 3, 4]),
        ([1], [5]),
        ([2, 3, 1], [4]),
        ([2, 1, 4], [1, 3, 1]),
        ([], [2, 2]),
        ([3, 4], []),
        ([2, 1], [2, 0]),
        ([1, 1, 50000], [3, 2, 1]),
    ];

    private static IEnumerable<TestCaseData> ExpandCases() =>
        from type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Bool }
        from p in ExpandPatterns
        select new TestCaseData(type, p.Input, p.Shape).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(p.Input), $"[{string.Join(',', p.Shape)}]");

    [TestCaseSource(nameof(ExpandCases))]
    public void Expand_matches_ORT(ElementType type, int[] input, long[] shape) =>
        OperatorTestHarness.AssertMatchesOrt("Expand", [OperatorInputs.Of(type, "x", input, 2), Shape(shape)]);

    [Test]
    public void Expand_rejects_incompatible_shapes() =>
        OperatorTestHarness.AssertRejected("Expand", [OperatorInputs.F32("x", [3], 1), Shape(2, 4)], null, "shapes [3], [2,4] do not broadcast");

    // ---- Range ----

    private static IEnumerable<TestCaseData> RangeCases()
    {
        (double, double, double)[] values = [(0, 10, 1), (3, 17, 4), (10, 0, -3), (5, 5, 1), (5, 1, 1), (-7, 8, 2), (1, 2, 5)];
        foreach (var type in new[] { ElementType.Int64, ElementType.Int32, ElementType.Float32 })
            foreach (var v in values)
                yield return new TestCaseData(type, v.Item1, v.Item2, v.Item3).SetArgDisplayNames(type.ToString(), $"{v.Item1}", $"{v.Item2}", $"{v.Item3}");
        foreach (var v in new (double, double, double)[] { (0.5, 3.3, 0.25), (1, -1, -0.1), (0, 1, 0.3), (-2.5, 100.1, 1.7) })
            yield return new TestCaseData(ElementType.Float32, v.Item1, v.Item2, v.Item3).SetArgDisplayNames("Float32", $"{v.Item1}", $"{v.Item2}", $"{v.Item3}");
    }

    [TestCaseSource(nameof(RangeCases))]
    public void Range_matches_ORT(ElementType type, double start, double limit, double delta) =>
        OperatorTestHarness.AssertMatchesOrt("Range",
            [OperatorInputs.Values("start", type, [], start), OperatorInputs.Values("limit", type, [], limit), OperatorInputs.Values("delta", type, [], delta)]);

    [Test]
    public void Range_rejects_a_zero_delta_and_mixed_types()
    {
        OperatorTestHarness.AssertRejected("Range",
            [OperatorInputs.Values("start", ElementType.Int64, [], 0), OperatorInputs.Values("limit", ElementType.Int64, [], 5), OperatorInputs.Values("delta", ElementType.Int64, [], 0)],
            null, "delta is 0");
        OperatorTestHarness.AssertRejected("Range",
            [OperatorInputs.Values("start", ElementType.Int64, [], 0), OperatorInputs.Values("limit", ElementType.Int32, [], 5), OperatorInputs.Values("delta", ElementType.Int64, [], 1)],
            null, "must have one type");
        OperatorTestHarness.AssertRejected("Range",
            [OperatorInputs.Values("start", ElementType.Int64, [2], 0, 1), OperatorInputs.Values("limit", ElementType.Int64, [], 5), OperatorInputs.Values("delta", ElementType.Int64, [], 1)],
            null, "start must be a scalar");
    }

    // ---- Unsqueeze / Squeeze / Flatten ----

    private static IEnumerable<TestCaseData> UnsqueezeCases()
    {
        (int[], long[])[] cases = [([3, 4], [0]), ([3, 4], [2]), ([3, 4], [-1]), ([3, 4], [3, 0]), ([], [0, 1]), ([2, 3], [1, -1, 0]), ([5], [-2])];
        foreach (var (shape, axes) in cases)
            yield return new TestCaseData(shape, axes).SetArgDisplayNames(OperatorInputs.Show(shape), $"[{string.Join(',', axes)}]");
    }

    [TestCaseSource(nameof(UnsqueezeCases))]
    public void Unsqueeze_matches_ORT(int[] shape, long[] axes)
    {
        OperatorTestHarness.AssertMatchesOrt("Unsqueeze", [OperatorInputs.F32("x", shape, 1), TestInput.Int64s("axes", axes)]);
        OperatorTestHarness.AssertMatchesOrt("Unsqueeze", [OperatorInputs.I64("x", shape, 1)], new TestAttributes().Ints("axes", axes), opset: 11);
    }

    [Test]
    public void Unsqueeze_rejects_bad_axes()
    {
        OperatorTestHarness.AssertRejected("Unsqueeze", [OperatorInputs.F32("x", [3], 1), TestInput.Int64s("axes", 0, -3)], null, "repeat axis 0");
        OperatorTestHarness.AssertRejected("Unsqueeze", [OperatorInputs.F32("x", [3], 1), TestInput.Int64s("axes", 2)], null, "axes value 2 is out of range for rank 2");
        OperatorTestHarness.AssertRejected("Unsqueeze", [OperatorInputs.F32("x", [3], 1)], null, "needs axes");
    }

    private static IEnumerable<TestCaseData> SqueezeCases()
    {
        (int[], long[]?)[] cases = [([1, 3, 1, 4], [0]), ([1, 3, 1, 4], [-2, 0]), ([1, 3, 1, 4], null), ([1], null), ([1, 1], [1]), ([2, 3], null), ([1, 0, 1], [2])];
        foreach (var (shape, axes) in cases)
            yield return new TestCaseData(shape, axes).SetArgDisplayNames(OperatorInputs.Show(shape), axes is null ? "all" : $"[{string.Join(',', axes)}]");
    }

    [TestCaseSource(nameof(SqueezeCases))]
    public void Squeeze_matches_ORT(int[] shape, long[]? axes)
    {
        // ORT wants no trailing empty input name when axes is omitted.
        OperatorTestHarness.AssertMatchesOrt("Squeeze", axes is null ? [OperatorInputs.F16("x", shape, 1)] : [OperatorInputs.F16("x", shape, 1), TestInput.Int64s("axes", axes)]);
        OperatorTestHarness.AssertMatchesOrt("Squeeze", [OperatorInputs.Bool("x", shape, 1)], axes is null ? null : new TestAttributes().Ints("axes", axes), opset: 11);
    }

    [Test]
    public void Squeeze_with_empty_axes_removes_all_size_1_dimensions() =>
        OperatorTestHarness.AssertMatchesOrt("Squeeze", [OperatorInputs.F32("x", [1, 3, 1, 2], 1), TestInput.Int64s("axes")]);

    [Test]
    public void Squeeze_rejects_a_dimension_that_is_not_1() =>
        OperatorTestHarness.AssertRejected("Squeeze", [OperatorInputs.F32("x", [1, 3], 1), TestInput.Int64s("axes", 1)], null,
            "cannot squeeze axis 1 of shape [1,3]: its size is not 1");

    [Test]
    public void Flatten_matches_ORT()
    {
        foreach (var axis in new long[] { 0, 1, 2, 3, 4, -1, -4 })
            OperatorTestHarness.AssertMatchesOrt("Flatten", [OperatorInputs.I32("x", [2, 3, 4, 5], 1)], new TestAttributes().Int("axis", axis));
        OperatorTestHarness.AssertMatchesOrt("Flatten", [OperatorInputs.F32("x", [2, 3, 4], 1)]);
        OperatorTestHarness.AssertMatchesOrt("Flatten", [OperatorInputs.F32("x", [2, 0, 4], 1)], new TestAttributes().Int("axis", 2));
    }

    [Test]
    public void Flatten_rejects_an_axis_out_of_range() =>
        OperatorTestHarness.AssertRejected("Flatten", [OperatorInputs.F32("x", [2, 3], 1)], new TestAttributes().Int("axis", 3), "axis 3 is out of range for rank 2 (valid: -2..2)");

    // ---- Tile ----

    private static IEnumerable<TestCaseData> TileCases()
    {
        (int[], long[])[] cases = [([2, 3], [1, 1]), ([2, 3], [2, 3]), ([3], [4]), ([2, 1, 3], [1, 5, 2]), ([2, 3], [0, 2]), ([4, 1], [1, 7]), ([1, 1000], [50, 2]), ([], [])];
        foreach (var type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Bool })
            foreach (var (shape, repeats) in cases)
                yield return new TestCaseData(type, shape, repeats).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(shape), $"[{string.Join(',', repeats)}]");
    }

    [TestCaseSource(nameof(TileCases))]
    public void Tile_matches_ORT(ElementType type, int[] shape, long[] repeats) =>
        OperatorTestHarness.AssertMatchesOrt("Tile", [OperatorInputs.Of(type, "x", shape, 3), TestInput.Int64s("repeats", repeats)]);

    [Test]
    public void Tile_rejects_bad_repeats()
    {
        OperatorTestHarness.AssertRejected("Tile", [OperatorInputs.F32("x", [2, 3], 1), TestInput.Int64s("repeats", 2)], null, "has 1 values; the input [2,3] has rank 2");
        OperatorTestHarness.AssertRejected("Tile", [OperatorInputs.F32("x", [2, 3], 1), TestInput.Int64s("repeats", 2, -1)], null, "repeats [2,-1] are invalid");
    }

    // ---- Identity ----

    [Test]
    public void Identity_matches_ORT()
    {
        foreach (var type in AllTypes)
        {
            OperatorTestHarness.AssertMatchesOrt("Identity", [OperatorInputs.Of(type, "x", [3, 5], 4)]);
            OperatorTestHarness.AssertMatchesOrt("Identity", [OperatorInputs.Of(type, "x", [], 4)]);
        }
        OperatorTestHarness.AssertMatchesOrt("Identity", [OperatorInputs.F32("x", [3, 50000], 4)]);
    }
}
