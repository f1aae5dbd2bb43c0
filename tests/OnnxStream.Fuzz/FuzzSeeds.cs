using System.Text;
using OnnxStream.ModelBuilder;
using OnnxStream.Tensors;

namespace OnnxStream.Fuzz;

/// <summary>
/// The seed corpus of each target, made by the project's own writers and model builder (nothing is copied from
/// ../shared; its small files are added at run time when asked and present), and the files a target's inputs refer to.
/// </summary>
public static class FuzzSeeds
{
    /// <summary>
    /// Writes what target <paramref name="target"/>'s inputs refer to into <paramref name="workDir"/> (weight files,
    /// an external data file) and returns its seeds.
    /// </summary>
    /// <param name="target">One of <see cref="FuzzTargets.Names"/>.</param>
    /// <param name="workDir">The target's working folder (created).</param>
    /// <param name="sharedRoot">../shared, whose small fixtures are added as seeds; null or absent: none.</param>
    public static List<byte[]> Prepare(string target, string workDir, string? sharedRoot = null)
    {
        Directory.CreateDirectory(workDir);
        var shared = sharedRoot is not null && Directory.Exists(sharedRoot) ? Path.GetFullPath(sharedRoot) : null;
        var seeds = target switch
        {
            "modeltxt" => ModelText(workDir, shared),
            "onnx" => Onnx(workDir, shared),
            "npy" => Npy(workDir),
            "tokenizer" => Tokenizer(shared),
            "rangedata" => RangeDataSeeds(shared),
            _ => throw new ArgumentException($"Unknown fuzz target '{target}' (one of {string.Join(", ", FuzzTargets.Names)}).", nameof(target)),
        };
        return seeds;
    }

    private static List<byte[]> ModelText(string workDir, string? shared)
    {
        WriteWeight(workDir, "w.bin", ElementType.Float32, [4, 2, 1, 1], i => 0.25f * (i % 5) - 0.5f);
        WriteWeight(workDir, "b.bin", ElementType.Float32, [4], i => i * 0.1f);
        WriteWeight(workDir, "h.bin", ElementType.Float16, [4, 1, 1], i => 1 - i * 0.5f);
        WriteWeight(workDir, "mw.bin", ElementType.Float32, [8, 2], i => (i % 3) - 1);
        WriteWeight(workDir, "q.bin", ElementType.UInt8, [4, 2, 1, 1], i => 120 + i);
        WriteWeight(workDir, "shape.bin", ElementType.Int64, [2], i => i == 0 ? 4 : 16);
        WriteWeight(workDir, "idx.bin", ElementType.Int64, [1], _ => 2);
        var seeds = new List<byte[]>
        {
            Utf8("""
                 conv:Conv*input:x(1,2,4,4);w.bin(float32:4,2,1,1);b.bin(float32:4)*output:y(1,4,4,4)*dilations:1,1;group:1;kernel_shape:1,1;pads:0,0,0,0;strides:1,1
                 relu:Relu*input:y(1,4,4,4)*output:z(1,4,4,4)
                 rs:Reshape*input:z(1,4,4,4);shape.bin(int64:2)*output:r(4,16)

                 """),
            Utf8("""
                 qconv:Conv*input:x(1,2,4,4);q.bin(uint8[0.01,128]:4,2,1,1)*output:y(1,4,4,4)*group:1;kernel_shape:1,1
                 add:Add*input:y(1,4,4,4);h.bin(float16:4,1,1)*output:z(1,4,4,4)
                 sm:Softmax*input:z(1,4,4,4)*output:s(1,4,4,4)*axis:1

                 """.ReplaceLineEndings("\r\n")),
            Utf8("""
                 _2F_a_2F_Shape:Shape*input:x_2E_1(1,3,8)*output:s()
                 :Gather*input:s();idx.bin(int64:1)*output:g()*axis:0
                 m:MatMul*input:x_2E_1(1,3,8);mw.bin(float32:8,2)*output:m()
                 t:Transpose*input:m()*output:t(2,3,1)*perm:2,1,0
                 """),
        };
        if (shared is not null)
            foreach (var folder in new[] { "models/tiny-sd15/vae_decoder_qu8", "models/tiny-sd15/text_encoder_fp32", "models/yolov8n_fp32" })
            {
                var source = Path.Combine(shared, folder);
                if (!File.Exists(Path.Combine(source, "model.txt"))) continue;
                seeds.Add(File.ReadAllBytes(Path.Combine(source, "model.txt")));
                // Its weights, linked (not copied) into the working folder; a name two folders share keeps the first.
                foreach (var weight in Directory.EnumerateFiles(source, "*.bin"))
                {
                    var link = Path.Combine(workDir, Path.GetFileName(weight));
                    if (!File.Exists(link)) File.CreateSymbolicLink(link, weight);
                }
            }
        return seeds;
    }

    private static List<byte[]> Onnx(string workDir, string? shared)
    {
        var seeds = new List<byte[]>();

        // A strided convolution, a pooling, a flattening Gemm; an int64 input cast to float16.
        var conv = new OnnxGraphBuilder("conv");
        var pooled = conv.Node("MaxPool", [conv.Node("Relu", [conv.Node("Conv", [conv.Input("x", OnnxElementType.Float, 1, 2, 8, 8),
            conv.Parameter("w", [4, 2, 3, 3], WeightInit.FanIn(18))], OnnxAttribute.Ints("strides", 2, 2), OnnxAttribute.Ints("pads", 1, 1, 1, 1))])],
            OnnxAttribute.Ints("kernel_shape", 2, 2), OnnxAttribute.Ints("strides", 2, 2));
        var logits = conv.Node("Gemm", [conv.Node("Flatten", [pooled]), conv.Parameter("g", [16, 3], WeightInit.Uniform(0.2f))]);
        conv.Output(logits, "logits", OnnxElementType.Float, 1, 3);
        conv.Output(conv.Node("Cast", [conv.Input("ids", OnnxElementType.Int64, 1, 3)], OnnxAttribute.Int("to", 10)), "half", OnnxElementType.Float16, 1, 3);
        seeds.Add(Written(conv, workDir, "conv", ExternalDataPolicy.Never));

        // An unsimplified export's shape arithmetic (Shape → Gather → Unsqueeze → Concat → Reshape), a MatMul and a
        // Softmax, its weights in an external data file (model.onnx_data, which stays in the working folder).
        var shapes = new OnnxGraphBuilder("shapes");
        var a = shapes.Input("a", OnnxElementType.Float, 2, 3, 8);
        var batch = shapes.Node("Unsqueeze", [shapes.Node("Gather", [shapes.Node("Shape", [a]), shapes.Constant([0L])], OnnxAttribute.Int("axis", 0)), shapes.Ints(0)]);
        var flat = shapes.Node("Reshape", [a, shapes.Node("Concat", [batch, shapes.Ints(-1)], OnnxAttribute.Int("axis", 0))]);
        var product = shapes.Node("MatMul", [flat, shapes.Parameter("m", [24, 5], WeightInit.Uniform(0.5f))]);
        var scaled = shapes.Node("Mul", [product, shapes.Scalar(0.5f)]);
        shapes.Output(shapes.Node("Softmax", [scaled], OnnxAttribute.Int("axis", -1)), "s", OnnxElementType.Float, 2, 5);
        seeds.Add(Written(shapes, workDir, "model", ExternalDataPolicy.Always));

        if (shared is not null && File.Exists(Path.Combine(shared, "models/tiny-sd15/text_encoder/model.onnx")))
            seeds.Add(File.ReadAllBytes(Path.Combine(shared, "models/tiny-sd15/text_encoder/model.onnx")));
        return seeds;
    }

    /// <summary>Writes <paramref name="graph"/> as <c>workDir/name.onnx</c> (and its <c>_data</c> file) and returns the .onnx file's bytes.</summary>
    private static byte[] Written(OnnxGraphBuilder graph, string workDir, string name, ExternalDataPolicy externalData)
    {
        var path = Path.Combine(workDir, name + ".onnx");
        OnnxModelWriter.Write(graph, path, new OnnxWriteOptions { Seed = 1, ExternalData = externalData });
        return File.ReadAllBytes(path);
    }

    private static List<byte[]> Npy(string workDir)
    {
        var seeds = new List<byte[]>();
        var path = Path.Combine(workDir, "seed.npy");
        foreach (var (type, shape) in new (ElementType, int[])[]
                 {
                     (ElementType.Float32, [2, 3]), (ElementType.Float16, []), (ElementType.Int64, [4]),
                     (ElementType.Int32, [1, 1, 2]), (ElementType.UInt8, [3]), (ElementType.Bool, [2, 2]),
                 })
        {
            using var tensor = Tensor.Allocate(type, shape);
            for (var i = 0; i < tensor.Bytes.Length; i++) tensor.Bytes[i] = (byte)(i * 37 % 2);
            NpyFile.Write(path, tensor);
            seeds.Add(File.ReadAllBytes(path));
        }
        // Format 2.0: a four-byte header length.
        var header = Encoding.Latin1.GetBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }".PadRight(51) + "\n");
        seeds.Add([0x93, .. "NUMPY"u8, 2, 0, (byte)header.Length, 0, 0, 0, .. header, .. new byte[8]]);
        return seeds;
    }

    private static List<byte[]> Tokenizer(string? shared)
    {
        string[] merges = ["l o", "lo w</w>", "e r</w>", "lo w", "w e", "n e", "ne w", "p h", "ph o", "t o</w>"];
        var tokens = ByteAlphabet().Select(c => c.ToString()).Concat(ByteAlphabet().Select(c => c + "</w>"))
            .Concat(merges.Select(m => m.Replace(" ", ""))).Append("<|startoftext|>").Append("<|endoftext|>").Distinct().ToList();
        var mergesText = "#version: 0.2\n" + string.Join("\n", merges) + "\n";
        var json = "{" + string.Join(",", tokens.Select((t, id) => $"{System.Text.Json.JsonSerializer.Serialize(t)}:{id}")) + "}";
        var seeds = new List<byte[]>
        {
            Utf8(string.Join("\n", tokens) + "\n\0" + mergesText),
            Utf8(json + "\0" + mergesText.ReplaceLineEndings("\r\n")),
        };
        var folder = shared is null ? null : Path.Combine(shared, "models/tiny-sd15/tokenizer");
        if (folder is not null && File.Exists(Path.Combine(folder, "merges.txt")))
            foreach (var vocab in new[] { "vocab.txt", "vocab.json" })
                if (File.Exists(Path.Combine(folder, vocab)))
                    seeds.Add([.. File.ReadAllBytes(Path.Combine(folder, vocab)), 0, .. File.ReadAllBytes(Path.Combine(folder, "merges.txt"))]);
        return seeds;
    }

    /// <summary>CLIP's byte-level alphabet in vocabulary order: the printable bytes as themselves, then the others as U+0100 on.</summary>
    private static IEnumerable<char> ByteAlphabet()
    {
        static bool Printable(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        var next = 256;
        var others = new List<char>();
        for (var b = 0; b < 256; b++)
            if (Printable(b)) yield return (char)b;
            else others.Add((char)next++);
        foreach (var c in others) yield return c;
    }

    private static List<byte[]> RangeDataSeeds(string? shared)
    {
        var seeds = new List<byte[]>
        {
            Utf8("conv,-1.5,2.25\r\nrelu,0,2.25\r\n/decoder/conv_in/Conv,-1.325026,1.256739\r\n"),
            Utf8("a,b,name with commas,-1e-3,4E2\n\n  \nsm,0,1\nx,-0,0\n"),
        };
        var file = shared is null ? null : Path.Combine(shared, "models/tiny-sd15/vae_decoder_qu8/range_data.txt");
        if (file is not null && File.Exists(file)) seeds.Add(File.ReadAllBytes(file));
        return seeds;
    }

    private static void WriteWeight(string folder, string name, ElementType type, int[] shape, Func<int, float> value)
    {
        using var tensor = Tensor.Allocate(type, shape);
        var count = tensor.Bytes.Length / type.Size();
        for (var i = 0; i < count; i++)
        {
            var v = value(i);
            var bytes = tensor.Bytes.Slice(i * type.Size(), type.Size());
            switch (type)
            {
                case ElementType.Float32: BitConverter.TryWriteBytes(bytes, v); break;
                case ElementType.Float16: BitConverter.TryWriteBytes(bytes, (Half)v); break;
                case ElementType.Int64: BitConverter.TryWriteBytes(bytes, (long)v); break;
                default: bytes[0] = (byte)v; break;
            }
        }
        File.WriteAllBytes(Path.Combine(folder, name), tensor.Bytes.ToArray());
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
