using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Operators;

/// <summary>
/// ONNX Einsum (opset 12): the sum of products described by the <c>equation</c> attribute, e.g.
/// "bhid,bhjd->bhij". Labels are a-z and A-Z; "..." stands for the leading-or-inner dimensions an input
/// has beyond its letters (numpy rules: right-aligned across inputs, size-1 dimensions broadcast, as
/// do size-1 letter dimensions). Explicit form ("->"): the output is exactly the given term, which must
/// hold "..." when an input's does cover dimensions. Implicit form: "..." then every letter used once,
/// in ASCII order (uppercase before lowercase, as numpy and the ONNX reference order them). A letter
/// repeated within one input term takes that input's diagonal. float32, and float16 through float32.
/// <para>
/// Inputs are contracted left to right, each pair as one batched matrix product on the native kernel
/// (<see cref="BatchMatMulKernel"/>): labels both sides share and still need are the batch, labels only
/// one side has are M or N, shared labels nobody needs later are K; a label only one side has and
/// nobody needs is summed away first. Operands are permuted (a strided copy) only when their layout is
/// not already [batch, M, K] / [batch, K, N] / [batch, N, K], so attention's "bhid,bhjd->bhij" and
/// "bhij,bhjd->bhid" and plain "ij,jk->ik" run without copies and write the output directly.
/// </para>
/// </summary>
internal sealed unsafe class EinsumOperator : IOperator
{
    /// <summary>Letters map to 0-51 ('a'-'z', then 'A'-'Z'); ellipsis dimension j is label 52 + j.</summary>
    private const int Letters = 52;

    /// <summary>Reductions smaller than this many elements run on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <summary>Columns per work item when summing leading rows.</summary>
    private const int ColumnBlock = 4096;

    /// <inheritdoc />
    public void Run(OperatorContext context)
    {
        var inputs = new Tensor[context.InputCount];
        for (var i = 0; i < inputs.Length; i++) inputs[i] = context.Input(i);
        var plan = InferShape(context, inputs);
        var output = context.Output(0, plan.Type, plan.OutputShape);
        if (output.ElementCount == 0) return;
        // A sum over an empty dimension is 0, and outputs start zeroed.
        foreach (var input in inputs)
            if (input.ElementCount == 0) return;

        var operands = new List<Operand>();
        Tensor? result32 = null;
        try
        {
            for (var i = 0; i < inputs.Length; i++) operands.Add(Prepare(context, inputs[i], plan.Terms[i]));
            // Output labels that some operand still has (the others have size 1 everywhere).
            var present = new bool[plan.Sizes.Length];
            foreach (var operand in operands)
                foreach (var label in operand.Labels) present[label] = true;
            var outputLabels = plan.OutputLabels.Where(l => present[l]).ToArray();
            var inOutput = new bool[plan.Sizes.Length];
            foreach (var label in plan.OutputLabels) inOutput[label] = true;

            var current = operands[0];
            var wroteOutput = false;
            for (var i = 1; i < operands.Count; i++)
            {
                // Labels still needed after this step: the output's and those of the operands after i.
                var later = (bool[])inOutput.Clone();
                for (var j = i + 1; j < operands.Count; j++)
                    foreach (var label in operands[j].Labels) later[label] = true;
                // First sum away what only one side has and nobody needs.
                var next = operands[i];
                var needed = (bool[])later.Clone();
                foreach (var label in next.Labels) needed[label] = true;
                current = Replace(operands, 0, Reduce(context, current, label => needed[label]));
                var inCurrent = new bool[plan.Sizes.Length];
                foreach (var label in current.Labels) inCurrent[label] = true;
                next = Replace(operands, i, Reduce(context, next, label => later[label] || inCurrent[label]));

                var final = i == operands.Count - 1;
                Tensor Target() => output.ElementType == ElementType.Float32 ? output : result32 = context.Scratch(ElementType.Float32, plan.OutputShape);
                var product = Contract(context, current, next, later, final ? outputLabels : null, plan.Sizes, Target, out var direct);
                wroteOutput = direct;
                next.Release();
                current = Replace(operands, 0, product);
            }
            // A single input: sum away the labels the output lacks (after a contraction there are none).
            current = Replace(operands, 0, Reduce(context, current, label => inOutput[label]));

            if (!wroteOutput)
            {
                // Permute into the output's order (labels of size 1 everywhere get stride 0).
                var strides = current.Strides();
                var sourceStrides = new long[plan.OutputLabels.Length];
                for (var d = 0; d < sourceStrides.Length; d++)
                {
                    var at = Array.IndexOf(current.Labels, plan.OutputLabels[d]);
                    sourceStrides[d] = at < 0 ? 0 : strides[at];
                }
                if (output.ElementType == ElementType.Float16 && current.Labels.SequenceEqual(outputLabels))
                {
                    Layout.FromFloat32(context, current.Data, output);
                    return;
                }
                var target = output.ElementType == ElementType.Float32 ? output : result32 ??= context.Scratch(ElementType.Float32, plan.OutputShape);
                AxisHelper.Copy(context, current.Data, 0, sourceStrides, target, 0, AxisHelper.Strides(plan.OutputShape), plan.OutputShape);
            }
            if (result32 is not null) Layout.FromFloat32(context, result32, output);
        }
        finally
        {
            foreach (var operand in operands) operand.Release();
            result32?.Dispose();
        }
    }

    /// <summary>Stores <paramref name="replacement"/> at <paramref name="index"/>, releasing what it replaces.</summary>
    private static Operand Replace(List<Operand> operands, int index, Operand replacement)
    {
        if (!ReferenceEquals(operands[index], replacement)) operands[index].Release();
        operands[index] = replacement;
        return replacement;
    }

    /// <summary>An input as float32 with unique labels: float16 widened, diagonals taken, size-1 labels dropped.</summary>
    private static Operand Prepare(OperatorContext context, Tensor input, int[] term)
    {
        var data = Layout.ToFloat32(context, input, "input", out var owned);
        var operand = new Operand(data, owned, term, input.Shape);
        if (term.Distinct().Count() != term.Length)
        {
            // A diagonal: a label repeated in one term walks all its dimensions at once.
            var strides = operand.Strides();
            var unique = term.Distinct().ToArray();
            var dims = new int[unique.Length];
            var sourceStrides = new long[unique.Length];
            for (var u = 0; u < unique.Length; u++)
                for (var d = 0; d < term.Length; d++)
                {
                    if (term[d] != unique[u]) continue;
                    dims[u] = input.Shape[d];
                    sourceStrides[u] += strides[d];
                }
            var diagonal = context.Scratch(ElementType.Float32, dims);
            try
            {
                AxisHelper.Copy(context, data, 0, sourceStrides, diagonal, 0, AxisHelper.Strides(dims), dims);
            }
            catch
            {
                diagonal.Dispose();
                operand.Release();
                throw;
            }
            operand.Release();
            operand = new Operand(diagonal, true, unique, dims);
        }
        // Size-1 dimensions neither change the layout nor need summing or broadcasting.
        var keep = Enumerable.Range(0, operand.Labels.Length).Where(d => operand.Dims[d] != 1).ToArray();
        return new Operand(operand.Data, operand.Owned, keep.Select(d => operand.Labels[d]).ToArray(), keep.Select(d => operand.Dims[d]).ToArray());
    }

    /// <summary>
    /// <paramref name="a"/> · <paramref name="b"/> summed over their shared labels that are not in
    /// <paramref name="later"/>, as one batched matmul. When <paramref name="outputLabels"/> is given (the
    /// last contraction), the result's labels follow the output's order, and when that order is exactly
    /// the output's the product is written straight into the float32 tensor <paramref name="target"/> makes
    /// (<paramref name="direct"/>).
    /// </summary>
    private static Operand Contract(OperatorContext context, Operand a, Operand b, bool[] later, int[]? outputLabels, int[] sizes,
        Func<Tensor> target, out bool direct)
    {
        var batch = a.Labels.Where(l => b.Labels.Contains(l) && later[l]).ToList();
        var k = a.Labels.Where(l => b.Labels.Contains(l) && !later[l]).ToArray();
        var m = a.Labels.Where(l => !b.Labels.Contains(l)).ToList();
        var n = b.Labels.Where(l => !a.Labels.Contains(l)).ToList();
        if (outputLabels is not null)
        {
            int Position(int label) => Array.IndexOf(outputLabels, label);
            batch.Sort((x, y) => Position(x).CompareTo(Position(y)));
            m.Sort((x, y) => Position(x).CompareTo(Position(y)));
            n.Sort((x, y) => Position(x).CompareTo(Position(y)));
        }
        int Size(IEnumerable<int> labels) => labels.Aggregate(1, (p, l) => checked(p * sizes[l]));
        int[] resultLabels = [.. batch, .. m, .. n];
        var resultDims = resultLabels.Select(l => sizes[l]).ToArray();
        direct = outputLabels is not null && resultLabels.SequenceEqual(outputLabels);

        Operand? arrangedA = null, arrangedB = null;
        Tensor? result = null;
        try
        {
            arrangedA = Arrange(context, a, [.. batch, .. m, .. k]);
            bool transposeB;
            if (b.Labels.SequenceEqual([.. batch, .. k, .. n])) (arrangedB, transposeB) = (b, false);
            else if (b.Labels.SequenceEqual([.. batch, .. n, .. k])) (arrangedB, transposeB) = (b, true);
            else (arrangedB, transposeB) = (Arrange(context, b, [.. batch, .. k, .. n]), false);

            result = direct ? target() : context.Scratch(ElementType.Float32, resultDims);
            var shape = new BatchMatMulShape(Size(batch), Size(m), Size(k), Size(n), transposeB);
            BatchMatMulKernel.Run(context.Pool, shape, arrangedA.Data.Buffer<float>(), arrangedB.Data.Buffer<float>(), result.Buffer<float>());
            var product = new Operand(result, !direct, resultLabels, resultDims);
            result = null;
            return product;
        }
        finally
        {
            if (arrangedA is not null && !ReferenceEquals(arrangedA, a)) arrangedA.Release();
            if (arrangedB is not null && !ReferenceEquals(arrangedB, b)) arrangedB.Release();
            if (result is not null && !direct) result.Dispose();
        }
    }

    /// <summary><paramref name="operand"/> with its dimensions in the order of <paramref name="labels"/> (itself when already so).</summary>
    private static Operand Arrange(OperatorContext context, Operand operand, int[] labels)
    {
        if (operand.Labels.SequenceEqual(labels)) return operand;
        var strides = operand.Strides();
        var dims = new int[labels.Length];
        var sourceStrides = new long[labels.Length];
        for (var d = 0; d < labels.Length; d++)
        {
            var at = Array.IndexOf(operand.Labels, labels[d]);
            dims[d] = operand.Dims[at];
            sourceStrides[d] = strides[at];
        }
        var copy = context.Scratch(ElementType.Float32, dims);
        try
        {
            AxisHelper.Copy(context, operand.Data, 0, sourceStrides, copy, 0, AxisHelper.Strides(dims), dims);
        }
        catch
        {
            copy.Dispose();
            throw;
        }
        return new Operand(copy, true, labels, dims);
    }

    /// <summary>Sums <paramref name="operand"/> over every label <paramref name="keep"/> rejects (itself when none).</summary>
    private static Operand Reduce(OperatorContext context, Operand operand, Func<int, bool> keep)
    {
        var kept = operand.Labels.Where(keep).ToArray();
        if (kept.Length == operand.Labels.Length) return operand;
        var summed = operand.Labels.Where(l => !keep(l)).ToArray();
        var keptDims = kept.Select(l => operand.Dims[Array.IndexOf(operand.Labels, l)]).ToArray();
        var rows = (int)AxisHelper.Product(keptDims, 0, keptDims.Length);
        var length = operand.Data.ElementCount / rows;
        var result = context.Scratch(ElementType.Float32, keptDims);
        Operand? source = null;
        try
        {
            var leading = operand.Labels.Take(summed.Length).All(l => !keep(l));
            var trailing = operand.Labels.Skip(kept.Length).All(l => !keep(l));
            var pResult = (nint)AxisHelper.Data(result);
            if (leading && !trailing)
            {
                // [summed, kept]: add whole rows, a block of columns per work item.
                var pSource = (nint)AxisHelper.Data(operand.Data);
                var blocks = (rows + ColumnBlock - 1) / ColumnBlock;
                For(context, (long)rows * length, blocks, (start, end) =>
                {
                    for (var block = start; block < end; block++)
                    {
                        var c0 = (int)block * ColumnBlock;
                        var width = Math.Min(ColumnBlock, rows - c0);
                        var sum = new Span<float>((float*)pResult + c0, width);
                        new ReadOnlySpan<float>((float*)pSource + c0, width).CopyTo(sum);
                        for (long r = 1; r < length; r++)
                            TensorPrimitives.Add(sum, new ReadOnlySpan<float>((float*)pSource + r * rows + c0, width), sum);
                    }
                });
            }
            else
            {
                // [kept, summed]: one contiguous sum per kept element.
                source = Arrange(context, operand, [.. kept, .. summed]);
                var pSource = (nint)AxisHelper.Data(source.Data);
                For(context, (long)rows * length, rows, (start, end) =>
                {
                    for (var r = start; r < end; r++)
                        ((float*)pResult)[r] = TensorPrimitives.Sum(new ReadOnlySpan<float>((float*)pSource + r * length, length));
                });
            }
            var reduced = new Operand(result, true, kept, keptDims);
            result = null;
            return reduced;
        }
        finally
        {
            if (source is not null && !ReferenceEquals(source, operand)) source.Release();
            result?.Dispose();
        }
    }

    /// <summary>Runs <paramref name="body"/> over [0, <paramref name="items"/>), spread over threads when <paramref name="work"/> is large.</summary>
    private static void For(OperatorContext context, long work, long items, Action<long, long> body)
    {
        if (work < ParallelThreshold || context.Parallel.MaxDegreeOfParallelism <= 1 || items <= 1)
        {
            body(0, items);
            return;
        }
        var chunks = (int)Math.Min(items, context.Parallel.MaxDegreeOfParallelism * 4L);
        Parallel.For(0, chunks, context.Parallel, chunk => body(items * chunk / chunks, items * (chunk + 1) / chunks));
    }

    /// <summary>A float32 tensor and the label of each of its dimensions (size-1 dimensions may be left out).</summary>
    private sealed class Operand(Tensor data, bool owned, int[] labels, int[] dims)
    {
        public Tensor Data { get; } = data;
        public bool Owned { get; } = owned;
        public int[] Labels { get; } = labels;
        public int[] Dims { get; } = dims;

        public long[] Strides() => AxisHelper.Strides(Dims);

        /// <summary>Frees the tensor if this operand owns it (idempotent).</summary>
        public void Release()
        {
            if (Owned) Data.Dispose();
        }
    }

    /// <summary>What an Einsum computes: per input the label of each dimension, each label's size, the output's labels.</summary>
    internal sealed record EinsumPlan(ElementType Type, int[][] Terms, int[] Sizes, int[] OutputLabels, int[] OutputShape);

    /// <summary>Parses the equation against the inputs; checks types, ranks and sizes.</summary>
    internal static EinsumPlan InferShape(OperatorContext context, IReadOnlyList<Tensor> inputs)
    {
        if (!context.Attributes.Has("equation")) throw context.Error("the equation attribute is required");
        var original = context.Attributes.GetString("equation", "");
        var equation = string.Concat(original.Where(c => !char.IsWhiteSpace(c)));
        if (inputs.Count == 0) throw context.Error("Einsum needs at least one input");
        var type = inputs[0].ElementType;
        for (var i = 0; i < inputs.Count; i++)
        {
            if (inputs[i].ElementType is not (ElementType.Float32 or ElementType.Float16))
                throw context.Error($"inputs must be float32 or float16; input {i} is {inputs[i].ElementType}");
            if (inputs[i].ElementType != type)
                throw context.Error($"inputs must all have one type; input 0 is {type}, input {i} is {inputs[i].ElementType}");
        }

        var arrow = equation.IndexOf("->", StringComparison.Ordinal);
        if (arrow >= 0 && equation.IndexOf("->", arrow + 2, StringComparison.Ordinal) >= 0)
            throw context.Error($"equation '{original}' has more than one '->'");
        var left = arrow >= 0 ? equation[..arrow] : equation;
        var right = arrow >= 0 ? equation[(arrow + 2)..] : null;
        var terms = left.Split(',');
        if (terms.Length != inputs.Count)
            throw context.Error($"equation '{original}' has {terms.Length} input term(s) but the node has {inputs.Count} input(s)");

        // Letters of each term, and where its "..." is (-1: none).
        var parsed = new (List<int> Letters, int Ellipsis)[terms.Length];
        var ellipsisRank = 0;
        for (var i = 0; i < terms.Length; i++)
        {
            parsed[i] = ParseTerm(context, original, terms[i]);
            var rank = inputs[i].Shape.Length;
            var letters = parsed[i].Letters.Count;
            if (parsed[i].Ellipsis < 0 ? letters != rank : letters > rank)
                throw context.Error($"term '{terms[i]}' of equation '{original}' has {letters} label(s) but input {i} {AxisHelper.Format(inputs[i].Shape)} has rank {rank}");
            if (parsed[i].Ellipsis >= 0) ellipsisRank = Math.Max(ellipsisRank, rank - letters);
        }

        var sizes = new int[Letters + ellipsisRank];
        Array.Fill(sizes, -1);
        var counts = new int[Letters];
        var termLabels = new int[terms.Length][];
        for (var i = 0; i < terms.Length; i++)
        {
            var (letters, ellipsis) = parsed[i];
            var shape = inputs[i].Shape;
            var covered = ellipsis < 0 ? 0 : shape.Length - letters.Count;
            var labels = new List<int>(shape.Length);
            if (ellipsis < 0) labels.AddRange(letters);
            else
            {
                labels.AddRange(letters.Take(ellipsis));
                for (var e = 0; e < covered; e++) labels.Add(Letters + ellipsisRank - covered + e);
                labels.AddRange(letters.Skip(ellipsis));
            }
            termLabels[i] = labels.ToArray();
            foreach (var letter in letters) counts[letter]++;
            for (var d = 0; d < labels.Count; d++)
            {
                var label = labels[d];
                var size = shape[d];
                var first = labels.IndexOf(label);
                if (first < d && shape[first] != size)
                    throw context.Error($"label '{Name(label)}' is repeated in term '{terms[i]}' (a diagonal) but input {i} {AxisHelper.Format(shape)} has sizes {shape[first]} and {size} there");
                if (sizes[label] is -1 or 1) sizes[label] = size;
                else if (size != 1 && size != sizes[label])
                    throw context.Error($"label '{Name(label)}' has size {sizes[label]} in one input and {size} in input {i} {AxisHelper.Format(shape)} of equation '{original}'; sizes must match or be 1");
            }
        }
        for (var label = Letters; label < sizes.Length; label++)
            if (sizes[label] == -1) sizes[label] = 1;

        int[] output;
        if (right is not null)
        {
            var (letters, ellipsis) = ParseTerm(context, original, right);
            if (ellipsis < 0 && ellipsisRank > 0)
                throw context.Error($"equation '{original}': the inputs' '...' covers {ellipsisRank} dimension(s) but the output term '{right}' has no '...'");
            var seen = new HashSet<int>();
            foreach (var letter in letters)
            {
                if (counts[letter] == 0) throw context.Error($"output label '{Name(letter)}' of equation '{original}' is in no input term");
                if (!seen.Add(letter)) throw context.Error($"output label '{Name(letter)}' of equation '{original}' appears more than once");
            }
            var list = new List<int>();
            if (ellipsis < 0) list.AddRange(letters);
            else
            {
                list.AddRange(letters.Take(ellipsis));
                for (var e = 0; e < ellipsisRank; e++) list.Add(Letters + e);
                list.AddRange(letters.Skip(ellipsis));
            }
            output = list.ToArray();
        }
        else
        {
            var list = Enumerable.Range(Letters, ellipsisRank).ToList();
            // ASCII order: 'A'-'Z' (labels 26-51) before 'a'-'z' (0-25).
            for (var label = 26; label < Letters; label++)
                if (counts[label] == 1) list.Add(label);
            for (var label = 0; label < 26; label++)
                if (counts[label] == 1) list.Add(label);
            output = list.ToArray();
        }
        return new EinsumPlan(type, termLabels, sizes, output, output.Select(l => sizes[l]).ToArray());
    }

    /// <summary>The letters of one term (as labels) and the index among them where "..." stands (-1: none).</summary>
    private static (List<int> Letters, int Ellipsis) ParseTerm(OperatorContext context, string equation, string term)
    {
        var letters = new List<int>();
        var ellipsis = -1;
        for (var p = 0; p < term.Length; p++)
        {
            var c = term[p];
            if (c is >= 'a' and <= 'z') letters.Add(c - 'a');
            else if (c is >= 'A' and <= 'Z') letters.Add(26 + c - 'A');
            else if (c == '.' && string.CompareOrdinal(term, p, "...", 0, 3) == 0 && ellipsis < 0)
            {
                ellipsis = letters.Count;
                p += 2;
            }
            else if (c == '.')
                throw context.Error($"term '{term}' of equation '{equation}' has a '.' that is not part of its one '...'");
            else
                throw context.Error($"term '{term}' of equation '{equation}' has '{c}'; labels are the letters a-z and A-Z");
        }
        return (letters, ellipsis);
    }

    private static string Name(int label) => label < 26 ? ((char)('a' + label)).ToString()
        : label < Letters ? ((char)('A' + label - 26)).ToString() : "...";
}
