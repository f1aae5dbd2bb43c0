using System.Text.Json;
using OnnxStream.Conversion;
using OnnxStream.Graph;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.Conversion;

/// <summary>
/// <see cref="ModelFolderWriter"/> on the tiny-sd15 models of ../shared: with <c>Fold = false</c> it must
/// write the original converter's folders shipped beside them, model.txt line for line and every .bin byte
/// for byte (uint8 included: the percentile range and the float32 arithmetic of numpy are reproduced
/// exactly, so no tolerance is needed); folded, the folders must run and match the torch references.
/// </summary>
[Category("Models")]
internal sealed class ConverterTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-convert-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    /// <summary>A shipped folder: the component it was converted from, and the options.</summary>
    internal sealed record Shipped(string Component, string Folder, bool Float16, bool UInt8, double Tolerance)
    {
        public override string ToString() => Folder;
    }

    private static readonly Shipped[] Folders =
    [
        new("text_encoder", "text_encoder_fp32", false, false, 1e-4),
        new("unet", "unet_fp32", false, false, 1e-4),
        new("unet", "unet_fp16", true, false, 1e-2),
        new("vae_decoder", "vae_decoder_fp32", false, false, 1e-4),
        new("vae_decoder", "vae_decoder_fp16", true, false, 1e-2),
        new("vae_decoder", "vae_decoder_qu8", false, true, 0.25),
    ];

    [TestCaseSource(nameof(Folders))]
    public void Without_folding_it_writes_the_original_converters_folder(Shipped shipped)
    {
        var onnx = SharedFixtures.Require($"models/tiny-sd15/{shipped.Component}/model.onnx");
        var original = SharedFixtures.Require($"models/tiny-sd15/{shipped.Folder}");
        using var meta = ReadMeta(shipped.Component);
        var options = new ModelConversionOptions { Fold = false, Float16 = shipped.Float16, UInt8 = shipped.UInt8 };
        // The shipped folders' input renames were made on the ONNX before converting (onnx2txt renames nothing).
        if (meta.RootElement.GetProperty("onnxstream_folders").GetProperty(shipped.Folder).TryGetProperty("renamed_io", out var renames))
            foreach (var rename in renames.EnumerateObject()) options.Renames[rename.Name] = rename.Value.GetString()!;
        var rangeData = Path.Combine(original, "range_data.txt");
        if (File.Exists(rangeData)) options.RangeDataPath = rangeData;

        var result = ModelFolderWriter.Convert(onnx, _folder, options);

        var expectedLines = File.ReadAllLines(Path.Combine(original, "model.txt"));
        var actualLines = File.ReadAllLines(Path.Combine(_folder, "model.txt"));
        Assert.That(actualLines, Has.Length.EqualTo(expectedLines.Length), "lines");
        for (var i = 0; i < expectedLines.Length; i++)
            Assert.That(actualLines[i], Is.EqualTo(expectedLines[i]), $"model.txt line {i + 1}");
        var expectedFiles = Directory.GetFiles(original).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        var actualFiles = Directory.GetFiles(_folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        Assert.That(actualFiles, Is.EqualTo(expectedFiles), "files");
        foreach (var file in expectedFiles)
            Assert.That(File.ReadAllBytes(Path.Combine(_folder, file!)), Is.EqualTo(File.ReadAllBytes(Path.Combine(original, file!))), file);
        Assert.That(result.NodeCount, Is.EqualTo(expectedLines.Length));
        TestContext.Out.WriteLine($"{shipped.Folder}: {result.NodeCount} lines and {expectedFiles.Length} files equal; " +
                                  $"peak native {result.PeakNativeBytes} bytes, largest weight {result.LargestWeightBytes} bytes");
    }

    [TestCaseSource(nameof(Folders))]
    public void Folded_it_runs_and_matches_the_torch_reference(Shipped shipped)
    {
        var onnx = SharedFixtures.Require($"models/tiny-sd15/{shipped.Component}/model.onnx");
        var reference = SharedFixtures.Require($"models/tiny-sd15/{shipped.Component}/ref");
        using var meta = ReadMeta(shipped.Component);
        var result = ModelFolderWriter.Convert(onnx, _folder, new ModelConversionOptions { Float16 = shipped.Float16, UInt8 = shipped.UInt8 });
        var unfoldedLines = File.ReadAllLines(Path.Combine(SharedFixtures.Require($"models/tiny-sd15/{shipped.Folder}"), "model.txt")).Length;

        using var session = new InferenceSession(ModelLoader.Load(_folder), new InferenceSessionOptions { Threads = 2 });
        var inputs = new Dictionary<string, Tensor>();
        var expected = new Dictionary<string, Tensor>();
        try
        {
            foreach (var input in meta.RootElement.GetProperty("inputs").EnumerateArray())
                inputs[input.GetProperty("name").GetString()!] = TinySd15Tests.ReadRaw(reference, input, session);
            foreach (var output in meta.RootElement.GetProperty("outputs").EnumerateArray())
                expected[output.GetProperty("name").GetString()!] = TinySd15Tests.ReadRaw(reference, output, session);
            using var run = session.Run(inputs, extraOutputs: expected.Keys);
            foreach (var (name, wanted) in expected)
            {
                var actual = run.Outputs[name];
                Assert.That(actual.Shape, Is.EqualTo(wanted.Shape), name);
                var (maxError, maxReference) = TinySd15Tests.Compare(actual.Span<float>(), wanted.Span<float>());
                TestContext.Out.WriteLine($"{shipped.Folder} folded ({result.NodeCount} lines, {unfoldedLines} unfolded): {name} max |error| " +
                                          $"{maxError:G3} ({maxError / maxReference:G3} of max |ref|)");
                Assert.That(maxError, Is.LessThanOrEqualTo(shipped.Tolerance * maxReference), name);
            }
        }
        finally
        {
            foreach (var tensor in inputs.Values.Concat(expected.Values)) tensor.Dispose();
        }
        Assert.That(result.NodeCount, Is.LessThan(unfoldedLines), "folding removed nodes");
    }

    /// <summary>
    /// Streaming: converting the UNet holds at most about twice its largest weight in native memory (a weight
    /// and its transpose, or a weight and the sorted copy of its values for uint8). Managed allocations are
    /// printed: they follow the graph (names, lines, the folding rounds), not the weights, which never pass
    /// through managed arrays (<see cref="ModelFolderWriterTests.A_large_weight_is_converted_in_native_memory"/>).
    /// </summary>
    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    public void Converting_the_unet_holds_one_weight_at_a_time(bool float16, bool uint8)
    {
        var onnx = SharedFixtures.Require("models/tiny-sd15/unet/model.onnx");
        var options = new ModelConversionOptions { Float16 = float16, UInt8 = uint8 };
        ModelFolderWriter.Convert(onnx, _folder, options); // warm up (JIT, statics)
        var before = GC.GetAllocatedBytesForCurrentThread();
        var result = ModelFolderWriter.Convert(onnx, _folder, options);
        var managed = GC.GetAllocatedBytesForCurrentThread() - before;
        var weightBytes = ModelSummary.Of(ModelLoader.Load(onnx)).ParameterBytes;
        TestContext.Out.WriteLine($"unet (fp16 {float16}, uint8 {uint8}): {weightBytes} bytes of weights, largest {result.LargestWeightBytes}; " +
                                  $"peak native {result.PeakNativeBytes} bytes ({(double)result.PeakNativeBytes / result.LargestWeightBytes:F2}× the largest), " +
                                  $"managed allocations {managed} bytes; wrote {result.BytesWritten} bytes in {result.WeightFileCount} files");
        Assert.That(result.PeakNativeBytes, Is.LessThanOrEqualTo(2.5 * result.LargestWeightBytes));
    }

    private static JsonDocument ReadMeta(string component) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.Require($"models/tiny-sd15/{component}/ref"), "meta.json")));
}
