using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Operators;

/// <summary>Add, Sub, Mul and Div against ONNX Runtime: broadcasting, float16, integers, errors.</summary>
internal sealed class BinaryElementwiseOperatorTests
{
    private static readonly string[] Operators = ["Add", "Sub", "Mul", "Div"];

    private static readonly (int[] A, int[] B)[] Patterns =
    [
        ([2, 3, 4], [2, 3, 4]),
        ([1, 2, 8400], [1, 2, 8400]),
        ([1, 2, 8400], []),
        ([], [5]),
        ([], []),
        ([2, 3, 4], [4]),
        ([2, 3, 4], [3, 1]),
        ([1, 3, 1], [2, 1, 5]),
        ([2, 8, 3, 3], [1, 8, 1, 1]),
        ([2, 1, 3, 1, 2, 1], [1, 4, 1, 2, 1, 3]),
        ([2, 1, 2, 1, 2, 1, 3], [1, 2, 1, 2, 1, 3, 1]), // rank 7: managed fallback
        ([3, 1, 2, 2, 1, 2, 1, 2], [2, 1, 2, 2]),       // rank 8
        ([2, 0, 3], [1, 3]),                            // empty
    ];

    private static IEnumerable<TestCaseData> Cases(params string[] operators) =>
        from op in operators
        from p in Patterns
        select new TestCaseData(op, p.A, p.B).SetArgDisplayNames(op, Show(p.A), Show(p.B));

    private static IEnumerable<TestCaseData> AllCases() => Cases(Operators);

    private static string Show(int[] shape) => $"[{string.Join(',', shape)}]";

    private static int Count(int[] shape) => (int)Shapes.ElementCount(shape);

    [TestCaseSource(nameof(AllCases))]
    public void Float32_matches_ORT(string op, int[] aShape, int[] bShape) =>
        OperatorTestHarness.AssertMatchesOrt(op,
        [
            TestInput.Floats("a", aShape, 1),
            // Divisors away from zero keep the relative tolerance meaningful.
            TestInput.Floats("b", bShape, 2, 0.5f, 2f),
        ]);

    [TestCaseSource(nameof(AllCases))]
    public void Float16_matches_ORT(string op, int[] aShape, int[] bShape) =>
        OperatorTestHarness.AssertMatchesOrt(op,
        [
            new TestInput("a", ElementType.Float16, aShape, ToHalf(OperatorTestHarness.RandomFloats(Count(aShape), 3))),
            new TestInput("b", ElementType.Float16, bShape, ToHalf(OperatorTestHarness.RandomFloats(Count(bShape), 4, 0.5f, 2f))),
        ], relative: 1e-3, absolute: 1e-3);

    [TestCaseSource(nameof(AllCases))]
    public void Int64_matches_ORT(string op, int[] aShape, int[] bShape) =>
        OperatorTestHarness.AssertMatchesOrt(op,
        [
            new TestInput("a", ElementType.Int64, aShape, RandomLongs(Count(aShape), 5, -1000, 1000)),
            new TestInput("b", ElementType.Int64, bShape, NonZero(RandomLongs(Count(bShape), 6, -20, 20))),
        ]);

    [TestCaseSource(nameof(AllCases))]
    public void Int32_matches_ORT(string op, int[] aShape, int[] bShape) =>
        OperatorTestHarness.AssertMatchesOrt(op,
        [
            new TestInput("a", ElementType.Int32, aShape, Array.ConvertAll(RandomLongs(Count(aShape), 7, -1000, 1000), v => (int)v)),
            new TestInput("b", ElementType.Int32, bShape, Array.ConvertAll(NonZero(RandomLongs(Count(bShape), 8, -20, 20)), v => (int)v)),
        ]);

    [Test]
    public void Integer_division_truncates_toward_zero() =>
        OperatorTestHarness.AssertMatchesOrt("Div",
        [
            TestInput.Int64s("a", 7, -7, 7, -7, 0, long.MaxValue, long.MinValue + 1),
            TestInput.Int64s("b", 2, 2, -2, -2, 3, 3, -1),
        ]);

    [Test]
    public void Large_int64_shape_arithmetic_is_exact() =>
        OperatorTestHarness.AssertMatchesOrt("Mul",
        [
            TestInput.Int64s("a", 1L << 40, -(1L << 30), 3, 0),
            new TestInput("b", ElementType.Int64, [], new[] { 1000L }),
        ]);

    [TestCase("Add")]
    [TestCase("Sub")]
    [TestCase("Mul")]
    [TestCase("Div")]
    public void Large_float32_operands_match_ORT_with_threads(string op) =>
        OperatorTestHarness.AssertMatchesOrt(op, [TestInput.Floats("a", [3, 64, 40, 40], 9), TestInput.Floats("b", [1, 64, 1, 40], 10, 0.5f, 2f)]);

    [TestCase("Add")]
    [TestCase("Div")]
    public void Large_int64_operands_match_ORT_with_threads(string op) =>
        OperatorTestHarness.AssertMatchesOrt(op,
        [
            new TestInput("a", ElementType.Int64, [4, 100, 100], RandomLongs(40000, 11, -100000, 100000)),
            new TestInput("b", ElementType.Int64, [100, 1], NonZero(RandomLongs(100, 12, -50, 50))),
        ]);

    [TestCase("Add", false)]
    [TestCase("Sub", false)]
    [TestCase("Mul", true)]
    [TestCase("Div", true)]
    public void Float16_with_float32_stays_float16(string op, bool halfFirst)
    {
        // ORT refuses mixed types. A float16 model's activation meets a weight the session widened: the
        // float32 operand is rounded to float16 and the result is float16.
        int[] aShape = [2, 3, 4], bShape = [3, 1];
        var a = OperatorTestHarness.RandomFloats(24, 13);
        var b = OperatorTestHarness.RandomFloats(3, 14, 0.5f, 2f);
        var halves = ToHalf(halfFirst ? a : b);
        var inputs = halfFirst
            ? new TestInput?[] { new("a", ElementType.Float16, aShape, halves), new("b", ElementType.Float32, bShape, b) }
            : [new("a", ElementType.Float32, aShape, a), new("b", ElementType.Float16, bShape, halves)];
        var roundedA = halfFirst ? Array.ConvertAll(halves, h => (float)h) : Array.ConvertAll(ToHalf(a), h => (float)h);
        var roundedB = halfFirst ? Array.ConvertAll(ToHalf(b), h => (float)h) : Array.ConvertAll(halves, h => (float)h);
        foreach (var threads in new[] { 1, 2 })
        {
            var (type, shape, values) = OperatorTestHarness.RunOnnxStream(op, inputs, new TestAttributes(), 1, threads)[0];
            Assert.That(type, Is.EqualTo(ElementType.Float16));
            Assert.That(shape, Is.EqualTo(aShape));
            for (var i = 0; i < 24; i++)
            {
                float x = roundedA[i], y = roundedB[i / 4 % 3];
                var expected = (float)(Half)(op switch { "Add" => x + y, "Sub" => x - y, "Mul" => x * y, _ => x / y });
                Assert.That(values[i], Is.EqualTo(expected).Within(1e-3 + 1e-3 * Math.Abs(expected)), $"element {i}");
            }
        }
    }

    [Test]
    public void Shapes_that_do_not_broadcast_are_rejected() =>
        OperatorTestHarness.AssertRejected("Add", [TestInput.Floats("a", [2, 3], 1), TestInput.Floats("b", [4], 2)], null,
            "shapes [2,3] and [4] do not broadcast");

    [Test]
    public void Integer_division_by_zero_is_rejected() =>
        OperatorTestHarness.AssertRejected("Div", [TestInput.Int64s("a", 1, 2), TestInput.Int64s("b", 1, 0)], null,
            "integer division by zero");

    [Test]
    public void Mismatched_element_types_are_rejected() =>
        OperatorTestHarness.AssertRejected("Mul", [TestInput.Floats("a", [2], 1), new TestInput("b", ElementType.Int32, [2], new[] { 1, 2 })], null,
            "does not support Float32 and Int32");

    [TestCase(ElementType.Float32)]
    [TestCase(ElementType.Float16)]
    public void Int64_with_a_float_constant_is_integer_arithmetic(ElementType constantType)
    {
        // The original converter stores Mul's int64 constants as float32 (float16 in fp16 folders): SD's timestep group.
        Array constant = constantType == ElementType.Float32 ? new[] { 2f, -3f } : new[] { (Half)2, (Half)(-3) };
        var (type, shape, values) = OperatorTestHarness.RunOnnxStream("Mul",
            [TestInput.Int64s("a", 5, 7), new TestInput("b", constantType, [2], constant)], new TestAttributes(), 1, 1)[0];
        Assert.That(type, Is.EqualTo(ElementType.Int64));
        Assert.That(shape, Is.EqualTo(new[] { 2 }));
        Assert.That(values, Is.EqualTo(new double[] { 10, -21 }));
    }

    private static Half[] ToHalf(float[] values) => Array.ConvertAll(values, v => (Half)v);

    private static long[] RandomLongs(int count, int seed, long min, long max)
    {
        var random = new Random(seed);
        var values = new long[count];
        for (var i = 0; i < count; i++) values[i] = random.NextInt64(min, max + 1);
        return values;
    }

    private static long[] NonZero(long[] values) => Array.ConvertAll(values, v => v == 0 ? 1 : v);
}
