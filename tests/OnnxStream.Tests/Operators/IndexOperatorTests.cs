using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>
/// ArgMax, TopK and NonZero against ONNX Runtime: every axis (negative too), every attribute value,
/// ties (inputs on a coarse grid), float32, float16, int64, int32 (NonZero also bool and uint8). The
/// outputs are indices and copied values, so everything is compared exactly.
/// </summary>
internal sealed class IndexOperatorTests
{
    private static readonly ElementType[] NumberTypes = [ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32];

    /// <summary>Values with many ties: floats on a 0.5 grid, integers in [-3, 3].</summary>
    private static TestInput Tied(ElementType type, string name, int[] shape, int seed) => type switch
    {
        ElementType.Float32 or ElementType.Float16 => OperatorInputs.Grid(name, type, shape, seed),
        ElementType.Int64 => OperatorInputs.I64(name, shape, seed, -3, 3),
        _ => OperatorInputs.I32(name, shape, seed, -3, 3),
    };

    private static IEnumerable<TestCaseData> ArgMaxCases()
    {
        int[][] shapes = [[7], [3, 4, 5], [2, 1, 6], [2, 300, 70]];
        foreach (var type in NumberTypes)
            foreach (var shape in shapes)
                yield return new TestCaseData(type, shape).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(shape));
    }

    /// <summary>Every (keepdims, select_last_index) pair, absent attributes included.</summary>
    private static readonly (long? KeepDims, long? SelectLast)[] ArgMaxAttributes =
        [.. from k in new long?[] { null, 0, 1 } from s in new long?[] { null, 0, 1 } select (k, s)];

    [TestCaseSource(nameof(ArgMaxCases))]
    public void ArgMax_matches_ORT(ElementType type, int[] shape)
    {
        var x = Tied(type, "x", shape, 1);
        // Each axis takes a few of the attribute pairs, in turn; the rank-1 shape takes them all.
        var perAxis = shape.Length == 1 ? ArgMaxAttributes.Length : 2;
        var next = 0;
        for (var axis = -shape.Length; axis < shape.Length; axis++)
            for (var n = 0; n < perAxis; n++)
            {
                var (keepDims, selectLast) = ArgMaxAttributes[next++ % ArgMaxAttributes.Length];
                var attributes = new TestAttributes().Int("axis", axis);
                if (keepDims is { } k) attributes.Int("keepdims", k);
                if (selectLast is { } s) attributes.Int("select_last_index", s);
                OperatorTestHarness.AssertMatchesOrt("ArgMax", [x], attributes, opset: 13);
            }
    }

    [Test]
    public void ArgMax_of_an_empty_tensor_has_the_ONNX_shape()
    {
        // ORT 1.31 keeps the reduced axis at full size for an empty input; the ONNX shape rule gives 1 (or drops it).
        var x = OperatorInputs.F32("x", [4, 0, 3], 1);
        foreach (var (axis, keepDims, shape) in new[] { (0, 1L, new[] { 1, 0, 3 }), (0, 0L, new[] { 0, 3 }), (-1, 1L, new[] { 4, 0, 1 }), (2, 0L, new[] { 4, 0 }) })
        {
            var result = OperatorTestHarness.RunOnnxStream("ArgMax", [x], new TestAttributes().Int("axis", axis).Int("keepdims", keepDims), 1, 1);
            Assert.That(result[0].Item1, Is.EqualTo(ElementType.Int64));
            Assert.That(result[0].Item2, Is.EqualTo(shape));
        }
    }

    [Test]
    public void ArgMax_default_axis_is_0()
    {
        OperatorTestHarness.AssertMatchesOrt("ArgMax", [OperatorInputs.F32("x", [5, 3], 2)], opset: 13);
        OperatorTestHarness.AssertMatchesOrt("ArgMax", [OperatorInputs.F32("x", [5], 3)], new TestAttributes().Int("keepdims", 0), opset: 13);
    }

    [Test]
    public void ArgMax_finds_CLIPs_end_of_text_token()
    {
        // CLIP's text encoder pools at the end-of-text token: the largest id (49407) of each row of int64 ids.
        const long endOfText = 49407;
        var ids = new long[2 * 77];
        long[] prompt0 = [49406, 320, 1125, 539, 320, 2368, endOfText];
        long[] prompt1 = [49406, 1929, 593, 320, 3795, 12, 4500, 1629, endOfText];
        prompt0.CopyTo(ids, 0);
        prompt1.CopyTo(ids, 77);
        // Row 1 pads with the end-of-text token itself (as some tokenizers do): the first one must win.
        for (var i = 77 + prompt1.Length; i < 2 * 77; i++) ids[i] = endOfText;
        var input = new TestInput("input_ids", ElementType.Int64, [2, 77], ids);
        foreach (var keepDims in new long[] { 0, 1 })
            OperatorTestHarness.AssertMatchesOrt("ArgMax", [input], new TestAttributes().Int("axis", -1).Int("keepdims", keepDims), opset: 13);
        var result = OperatorTestHarness.RunOnnxStream("ArgMax", [input], new TestAttributes().Int("axis", -1).Int("keepdims", 0), 1, 1);
        Assert.That(result[0].Item3, Is.EqualTo(new double[] { prompt0.Length - 1, prompt1.Length - 1 }));
    }

    [Test]
    public void ArgMax_errors_are_reported()
    {
        var x = OperatorInputs.F32("x", [3, 4], 1);
        OperatorTestHarness.AssertRejected("ArgMax", [x], new TestAttributes().Int("axis", 2), "axis 2 is out of range for rank 2");
        OperatorTestHarness.AssertRejected("ArgMax", [x], new TestAttributes().Int("axis", -3), "axis -3 is out of range for rank 2");
        OperatorTestHarness.AssertRejected("ArgMax", [x], new TestAttributes().Int("keepdims", 2), "keepdims must be 0 or 1");
        OperatorTestHarness.AssertRejected("ArgMax", [x], new TestAttributes().Int("select_last_index", -1), "select_last_index must be 0 or 1");
        OperatorTestHarness.AssertRejected("ArgMax", [OperatorInputs.Bool("x", [3], 1)], null, "data must be float32, float16, int64 or int32");
        OperatorTestHarness.AssertRejected("ArgMax", [OperatorInputs.F32("x", [], 1)], null, "data must have rank 1 or more");
        OperatorTestHarness.AssertRejected("ArgMax", [OperatorInputs.F32("x", [3, 0], 1)], new TestAttributes().Int("axis", 1), "is empty");
    }

    private static IEnumerable<TestCaseData> TopKCases()
    {
        int[][] shapes = [[7], [3, 4, 5], [2, 1, 6], [2, 300, 9], [3, 0, 2]];
        foreach (var type in NumberTypes)
            foreach (var shape in shapes)
                yield return new TestCaseData(type, shape).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(shape));
    }

    [TestCaseSource(nameof(TopKCases))]
    public void TopK_matches_ORT(ElementType type, int[] shape)
    {
        // Ties (lower index first) and distinct values (random floats; integers over a wide range).
        TestInput[] inputs = [Tied(type, "x", shape, 1), OperatorInputs.Of(type, "x", shape, 2)];
        var run = 0;
        for (var axis = -shape.Length; axis < shape.Length; axis++)
        {
            var size = shape[axis < 0 ? axis + shape.Length : axis];
            foreach (var k in new[] { 0, 1, 2, size - 1, size }.Where(k => k >= 0 && k <= size).Distinct())
                foreach (var largest in new long[] { 0, 1 })
                {
                    run++;
                    var attributes = new TestAttributes();
                    if (axis != -1 || run % 3 == 0) attributes.Int("axis", axis);
                    if (largest == 0 || run % 3 == 1) attributes.Int("largest", largest);
                    if (run % 2 == 1) attributes.Int("sorted", 1);
                    OperatorTestHarness.AssertMatchesOrt("TopK", [inputs[run / 2 % 2], TestInput.Int64s("k", k)], attributes, outputCount: 2, opset: 11);
                }
        }
    }

    [Test]
    public void TopK_handles_a_long_axis_and_large_k()
    {
        // The bounded heap with K past the stack-buffer size, spread over threads.
        var x = OperatorInputs.Grid("x", ElementType.Float32, [3, 5000], 4, 0.25f, 41);
        foreach (var k in new long[] { 1, 10, 1500, 5000 })
            foreach (var largest in new long[] { 0, 1 })
                OperatorTestHarness.AssertMatchesOrt("TopK", [x, TestInput.Int64s("k", k)], new TestAttributes().Int("largest", largest), outputCount: 2, opset: 11);
        OperatorTestHarness.AssertMatchesOrt("TopK", [OperatorInputs.F32("x", [4000, 3], 5), TestInput.Int64s("k", 2)],
            new TestAttributes().Int("axis", 0), outputCount: 2, opset: 11);
    }

    [Test]
    public void TopK_unsorted_selects_the_same_elements_as_ORT()
    {
        // sorted=0 leaves the order to the implementation: compare the selected (index, value) pairs as sets.
        foreach (var type in NumberTypes)
            foreach (var (shape, axis, k) in new[] { (new[] { 3, 40 }, -1, 7), (new[] { 3, 40 }, -1, 30), (new[] { 50, 4 }, 0, 12) })
                foreach (var largest in new long[] { 0, 1 })
                {
                    var inputs = new[] { Tied(type, "x", shape, 3), TestInput.Int64s("k", k) };
                    var attributes = new TestAttributes().Int("axis", axis).Int("largest", largest).Int("sorted", 0);
                    var expected = RunOrt("TopK", inputs, attributes, 2, 11);
                    var actual = OperatorTestHarness.RunOnnxStream("TopK", inputs, attributes, 2, 2);
                    Assert.That(actual[0].Item2, Is.EqualTo(expected[0].Shape));
                    Assert.That(Pairs(actual[0].Item3, actual[1].Item3, actual[0].Item2, axis), Is.EqualTo(Pairs(expected[0].Values, expected[1].Values, expected[0].Shape, axis)),
                        $"{type} {OperatorInputs.Show(shape)} k={k} largest={largest}");
                }
    }

    /// <summary>Per slice along the axis: the (index, value) pairs, sorted by index.</summary>
    private static List<string> Pairs(double[] values, double[] indices, int[] shape, int axis)
    {
        var rank = shape.Length;
        axis = axis < 0 ? axis + rank : axis;
        var inner = shape.Skip(axis + 1).Aggregate(1, (a, b) => a * b);
        var k = shape[axis];
        var outer = values.Length / Math.Max(1, k * inner);
        var slices = new List<string>();
        for (var o = 0; o < outer; o++)
            for (var i = 0; i < inner; i++)
                slices.Add(string.Join(' ', Enumerable.Range(0, k)
                    .Select(j => (o * k + j) * inner + i)
                    .Select(at => (Index: indices[at], Value: values[at]))
                    .OrderBy(p => p.Index).Select(p => $"{p.Index}:{p.Value}")));
        return slices;
    }

    [Test]
    public void TopK_errors_are_reported()
    {
        var x = OperatorInputs.F32("x", [3, 4], 1);
        OperatorTestHarness.AssertRejected("TopK", [x, TestInput.Int64s("k", 5)], null, "K 5 is larger than axis 1 of X [3,4] (size 4)", 2);
        OperatorTestHarness.AssertRejected("TopK", [x, TestInput.Int64s("k", 4)], new TestAttributes().Int("axis", 0), "K 4 is larger than axis 0", 2);
        OperatorTestHarness.AssertRejected("TopK", [x, TestInput.Int64s("k", -1)], null, "K must not be negative", 2);
        OperatorTestHarness.AssertRejected("TopK", [x, TestInput.Int64s("k", 1, 2)], null, "K must hold one value", 2);
        OperatorTestHarness.AssertRejected("TopK", [x, TestInput.Int64s("k", 1)], new TestAttributes().Int("axis", -3), "axis -3 is out of range for rank 2", 2);
        OperatorTestHarness.AssertRejected("TopK", [x, TestInput.Int64s("k", 1)], new TestAttributes().Int("largest", 2), "largest must be 0 or 1", 2);
        OperatorTestHarness.AssertRejected("TopK", [x, TestInput.Int64s("k", 1)], new TestAttributes().Int("sorted", 3), "sorted must be 0 or 1", 2);
        OperatorTestHarness.AssertRejected("TopK", [OperatorInputs.U8("x", [4], 1), TestInput.Int64s("k", 1)], null, "X must be float32, float16, int64 or int32", 2);
        OperatorTestHarness.AssertRejected("TopK", [x, new TestInput("k", ElementType.Float32, [1], new[] { 1f })], null, "K must be int64 or int32", 2);
    }

    private static IEnumerable<TestCaseData> NonZeroCases()
    {
        int[][] shapes = [[], [7], [3, 4, 5], [2, 0, 3], [300, 250]];
        foreach (var type in new[] { ElementType.Float32, ElementType.Float16, ElementType.Int64, ElementType.Int32, ElementType.Bool, ElementType.UInt8 })
            foreach (var shape in shapes)
                yield return new TestCaseData(type, shape).SetArgDisplayNames(type.ToString(), OperatorInputs.Show(shape));
    }

    [TestCaseSource(nameof(NonZeroCases))]
    public void NonZero_matches_ORT(ElementType type, int[] shape)
    {
        for (var seed = 1; seed <= 3; seed++)
        {
            var x = type switch
            {
                ElementType.Bool => OperatorInputs.Bool("x", shape, seed),
                ElementType.UInt8 => new TestInput("x", type, shape, Enumerable.Range(0, OperatorInputs.Count(shape)).Select(i => (byte)((i * seed) % 3)).ToArray()),
                _ => Tied(type, "x", shape, seed),
            };
            OperatorTestHarness.AssertMatchesOrt("NonZero", [x]);
        }
    }

    [Test]
    public void NonZero_special_values_match_ORT()
    {
        double[] values = [0, -0.0, double.NaN, 1e-30, double.PositiveInfinity, 0, -1];
        OperatorTestHarness.AssertMatchesOrt("NonZero", [OperatorInputs.Values("x", ElementType.Float32, [values.Length], values)]);
        OperatorTestHarness.AssertMatchesOrt("NonZero", [OperatorInputs.Values("x", ElementType.Float16, [values.Length], values)]);
        OperatorTestHarness.AssertMatchesOrt("NonZero", [OperatorInputs.Values("x", ElementType.Float32, [], 0)]);
        OperatorTestHarness.AssertMatchesOrt("NonZero", [OperatorInputs.Values("x", ElementType.Float32, [], 2)]);
        // All zero and all non-zero, across several counting chunks.
        OperatorTestHarness.AssertMatchesOrt("NonZero", [OperatorInputs.Values("x", ElementType.Int32, [70000], new double[70000])]);
        OperatorTestHarness.AssertMatchesOrt("NonZero", [OperatorInputs.Values("x", ElementType.Bool, [2, 40000], Enumerable.Repeat(1.0, 80000).ToArray())]);
    }

    /// <summary>Runs a one-node graph in ONNX Runtime (for comparisons the harness cannot make element by element).</summary>
    private static List<(int[] Shape, double[] Values)> RunOrt(string opType, IReadOnlyList<TestInput> inputs, TestAttributes attributes, int outputCount, int opset)
    {
        var node = new NodeProto { OpType = opType, Name = "node" };
        node.Input.AddRange(inputs.Select(i => i.Name));
        node.Output.AddRange(Enumerable.Range(0, outputCount).Select(k => $"output{k}"));
        node.Attribute.AddRange(attributes.Protos);
        var graph = new GraphProto { Name = "test", Node = { node } };
        foreach (var input in inputs)
        {
            var shape = new TensorShapeProto();
            shape.Dim.AddRange(input.Shape.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
            var elementType = input.Type switch
            {
                ElementType.Float32 => TensorProto.Types.DataType.Float,
                ElementType.Float16 => TensorProto.Types.DataType.Float16,
                ElementType.Int64 => TensorProto.Types.DataType.Int64,
                _ => TensorProto.Types.DataType.Int32,
            };
            graph.Input.Add(new ValueInfoProto
            {
                Name = input.Name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)elementType, Shape = shape } },
            });
        }
        graph.Output.AddRange(Enumerable.Range(0, outputCount).Select(k => new ValueInfoProto { Name = $"output{k}" }));
        var model = new ModelProto { IrVersion = 8, Graph = graph, OpsetImport = { new OperatorSetIdProto { Domain = "", Version = opset } } };
        using var session = new InferenceSession(model.ToByteArray());
        var values = inputs.Select(i =>
        {
            var shape = i.Shape.Select(d => (long)d).ToArray();
            return i.Data switch
            {
                float[] f => OrtValue.CreateTensorValueFromMemory(f, shape),
                Half[] h => OrtValue.CreateTensorValueFromMemory(h.Select(v => new Float16(BitConverter.HalfToUInt16Bits(v))).ToArray(), shape),
                long[] l => OrtValue.CreateTensorValueFromMemory(l, shape),
                int[] n => OrtValue.CreateTensorValueFromMemory(n, shape),
                _ => throw new NotSupportedException(i.Data.GetType().Name),
            };
        }).ToArray();
        try
        {
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, inputs.Select(i => i.Name).ToArray(), values,
                Enumerable.Range(0, outputCount).Select(k => $"output{k}").ToArray());
            return outputs.Select(o =>
            {
                var info = o.GetTensorTypeAndShape();
                double[] data = info.ElementDataType switch
                {
                    Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float => o.GetTensorDataAsSpan<float>().ToArray().Select(v => (double)v).ToArray(),
                    Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16 => o.GetTensorDataAsSpan<Float16>().ToArray().Select(v => (double)(float)BitConverter.UInt16BitsToHalf(v.value)).ToArray(),
                    Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int64 => o.GetTensorDataAsSpan<long>().ToArray().Select(v => (double)v).ToArray(),
                    _ => o.GetTensorDataAsSpan<int>().ToArray().Select(v => (double)v).ToArray(),
                };
                return (info.Shape.Select(d => (int)d).ToArray(), data);
            }).ToList();
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }
}
