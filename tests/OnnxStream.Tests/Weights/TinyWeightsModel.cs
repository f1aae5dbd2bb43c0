using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.Weights;

/// <summary>
/// y = ((x + w0) * w1 + w2) * w1 as a model folder (w0.bin, w1.bin, w2.bin), and the same weights as
/// ranges of one file, model.data, with junk between them (as an .onnx or external data file has).
/// </summary>
internal sealed class TinyWeightsModel : IDisposable
{
    public const string DataFile = "model.data";

    public TinyWeightsModel()
    {
        Folder = Directory.CreateTempSubdirectory("onnxstream-weights-").FullName;
        for (var i = 0; i < 3; i++)
        {
            WeightFiles[$"w{i}.bin"] = Bytes(i);
            File.WriteAllBytes(Path.Combine(Folder, $"w{i}.bin"), Bytes(i));
        }
        File.WriteAllText(Path.Combine(Folder, "model.txt"),
            "add0:Add*input:x(2,3);w0.bin(float32:3)*output:a(2,3)\n" +
            "mul0:Mul*input:a(2,3);w1.bin(float32:2,3)*output:b(2,3)\n" +
            "add1:Add*input:b(2,3);w2.bin(float32:1)*output:c(2,3)\n" +
            "mul1:Mul*input:c(2,3);w1.bin(float32:2,3)*output:y(2,3)\n");
        // model.data: 16 junk bytes, w0, 7 junk bytes, w1, w2, 5 junk bytes.
        var data = new List<byte>(Enumerable.Repeat((byte)0xEE, 16));
        foreach (var (i, gap) in new[] { (0, 7), (1, 0), (2, 5) })
        {
            Offsets[$"w{i}.bin"] = data.Count;
            data.AddRange(Bytes(i));
            data.AddRange(Enumerable.Repeat((byte)0xDD, gap));
        }
        Data = data.ToArray();
        File.WriteAllBytes(Path.Combine(Folder, DataFile), Data);
    }

    public string Folder { get; }

    /// <summary>The .bin files' contents, by file name.</summary>
    public Dictionary<string, byte[]> WeightFiles { get; } = [];

    /// <summary>model.data's contents.</summary>
    public byte[] Data { get; }

    /// <summary>Where each weight starts in model.data.</summary>
    public Dictionary<string, long> Offsets { get; } = [];

    public static float[] X { get; } = [1, 2, 3, 4, 5, -6];

    private static float[] Weights(int i) => i switch { 0 => [1, 2, 3], 1 => [1, -1, 2, -2, 0.5f, 4], _ => [10] };

    private static byte[] Bytes(int i) => Weights(i).SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>The model folder's graph: each weight is a whole .bin file.</summary>
    public ModelGraph FolderGraph() => ModelTextReader.Read(Folder);

    /// <summary>The same graph with each weight a range of model.data.</summary>
    public ModelGraph SingleFileGraph()
    {
        var graph = FolderGraph();
        var path = Path.Combine(Folder, DataFile);
        TensorDescriptor? Move(TensorDescriptor? d) =>
            d is { Location: { } l } ? d with { Location = new WeightLocation(path, Offsets[d.Name], l.Length) } : d;
        return graph with { Nodes = graph.Nodes.Select(n => n with { Inputs = n.Inputs.Select(Move).ToArray() }).ToList() };
    }

    /// <summary>Runs <paramref name="graph"/> <paramref name="runs"/> times, returns y of the last run and asserts every run gives the same.</summary>
    public static float[] Run(ModelGraph graph, InferenceSessionOptions options, int runs = 3, CancellationToken cancellationToken = default)
    {
        float[]? first = null;
        using var session = new InferenceSession(graph, options);
        using (var input = Tensor.From<float>(X, [2, 3], session.Allocator))
        {
            for (var run = 0; run < runs; run++)
            {
                using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input }, cancellationToken: cancellationToken);
                var y = result.Outputs["y"].Span<float>().ToArray();
                if (first is null) first = y;
                else Assert.That(y, Is.EqualTo(first), $"run {run}");
            }
        }
        Assert.That(session.Allocator.LiveBlocks, Is.Zero, "blocks left after the runs");
        Assert.That(session.Allocator.CurrentBytes, Is.Zero, "bytes left after the runs");
        return first!;
    }

    /// <summary>What the disk provider that reads each weight when needed computes: the reference.</summary>
    public float[] Reference() => Run(FolderGraph(), new InferenceSessionOptions { WeightsProvider = WeightsProviderKind.NoCache, Threads = 1 }, runs: 1);

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}
