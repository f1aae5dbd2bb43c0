using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Cli.Bench;

/// <summary>The inputs every configuration of a bench runs on: seeded random tensors of the graph's declared inputs, as .npy files.</summary>
internal static class BenchInputs
{
    /// <summary>Integer inputs (token ids, indices) are drawn below this, which is a valid id for every Stable Diffusion text encoder.</summary>
    public const int IntegerBound = 1000;

    /// <summary>
    /// Writes one .npy file per input of <paramref name="graph"/> to <paramref name="folder"/>: floats uniform in
    /// [-1, 1), integers in [0, <see cref="IntegerBound"/>), from <paramref name="seed"/>. Inputs named in
    /// <paramref name="given"/> (NAME → .npy file) are used as they are.
    /// </summary>
    /// <returns>NAME → file, for every input.</returns>
    /// <exception cref="ArgumentException">An input without a static shape that <paramref name="given"/> does not supply.</exception>
    public static Dictionary<string, string> Write(ModelGraph graph, string folder, int seed, IReadOnlyDictionary<string, string> given)
    {
        var random = new Random(seed);
        var files = new Dictionary<string, string>(given);
        var allocator = new NativeAllocator();
        foreach (var input in graph.Inputs.Where(i => !given.ContainsKey(i.Name)))
        {
            if (!input.HasStaticShape || input.Shape.Any(d => d <= 0))
                throw new ArgumentException($"Input '{input.Name}' of {graph.Source} has no static shape ({string.Join('x', input.Shape)}): give it with --input {input.Name}=FILE.npy.");
            using var tensor = Tensor.Allocate(input.ActivationType ?? ElementType.Float32, input.Shape, allocator);
            Fill(tensor, random);
            var file = Path.Combine(folder, $"input{files.Count}.npy");
            NpyFile.Write(file, tensor);
            files[input.Name] = file;
        }
        return files;
    }

    private static void Fill(Tensor tensor, Random random)
    {
        switch (tensor.ElementType)
        {
            case ElementType.Float32:
                foreach (ref var value in tensor.Span<float>()) value = random.NextSingle() * 2 - 1;
                break;
            case ElementType.Float16:
                foreach (ref var value in tensor.Span<Half>()) value = (Half)(random.NextSingle() * 2 - 1);
                break;
            case ElementType.Int64:
                foreach (ref var value in tensor.Span<long>()) value = random.Next(IntegerBound);
                break;
            case ElementType.Int32:
                foreach (ref var value in tensor.Span<int>()) value = random.Next(IntegerBound);
                break;
            default:
                var bound = tensor.ElementType == ElementType.Bool ? 2 : 256;
                foreach (ref var value in tensor.Bytes) value = (byte)random.Next(bound);
                break;
        }
    }
}
