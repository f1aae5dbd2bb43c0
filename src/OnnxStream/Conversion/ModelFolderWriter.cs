using System.Globalization;
using System.Text;
using OnnxStream.Graph;
using OnnxStream.Graph.OnnxFormat;
using OnnxStream.Graph.Passes;
using OnnxStream.IO;
using OnnxStream.Memory;
using OnnxStream.Tensors;
using OnnxStream.Weights;

namespace OnnxStream.Conversion;

/// <summary>
/// Converts an ONNX model into the original OnnxStream's model folder (model.txt and one .bin per weight;
/// see docs/onnxstream-model-format.md), in the format the original converter (onnx2txt) writes and the
/// original C++ reader reads: names escaped, activation shapes as ONNX shape inference gives them, Conv
/// kernels with their <c>_nhwc</c> companion, Gemm constants transposed (<c>_transposed</c>, the trans
/// attribute removed), Mul int64 constants as float32, and the fp16 and uint8 weight conversions.
/// It streams: weights are read from their range of the .onnx (or external data) file one at a time,
/// converted in native memory and written, so memory stays near the largest single weight.
/// </summary>
public static class ModelFolderWriter
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>
    /// Converts <paramref name="onnxPath"/> into <paramref name="outputFolder"/> (created when missing; a
    /// model.txt, range_data.txt and .bin files already there are replaced).
    /// </summary>
    /// <param name="onnxPath">The .onnx file.</param>
    /// <param name="outputFolder">The model folder to write.</param>
    /// <param name="options">Conversion options; null for the defaults (float32, folded).</param>
    /// <param name="progress">Told after each line of model.txt.</param>
    /// <param name="cancellationToken">Checked between nodes; a cancelled or failed conversion leaves the folder as it was.</param>
    /// <returns>What was written, and the peak native memory the conversion needed.</returns>
    /// <exception cref="ModelFormatException">The model is malformed or uses what the format cannot hold; the message says where.</exception>
    public static ConversionResult Convert(string onnxPath, string outputFolder, ModelConversionOptions? options = null,
        IProgress<ConversionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(onnxPath);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        options ??= new ModelConversionOptions();
        var graph = OnnxModelReader.Read(onnxPath, simplify: options.Fold,
            options: new ModelLoadOptions { AllowWeightsOutsideModelFolder = options.AllowWeightsOutsideModelFolder });
        if (options.Fold) graph = FoldWithInferredShapes(graph);
        var rangeData = options.RangeDataPath is { } rangePath ? RangeData.Read(rangePath) : null;
        var shapes = StaticShapeInference.Infer(graph);

        // Everything is written to a temporary folder beside the output and moved in at the end, so that a failed or
        // cancelled conversion leaves no partial folder (and an existing one as it was).
        var existed = Directory.Exists(outputFolder);
        var output = Directory.CreateDirectory(outputFolder);
        var staging = Directory.CreateDirectory(AtomicFile.TemporaryPathFor(output.FullName));
        FolderWriter writer;
        try
        {
            writer = new FolderWriter(staging.FullName, options, graph, shapes);
            using (var text = new StreamWriter(Path.Combine(staging.FullName, "model.txt"), append: false, Utf8) { NewLine = "\n" })
            {
                for (var i = 0; i < graph.Nodes.Count; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var node = graph.Nodes[i];
                    text.WriteLine(writer.Line(node));
                    progress?.Report(new ConversionProgress(i + 1, graph.Nodes.Count, node.Name, writer.FilesWritten, writer.BytesWritten));
                }
            }
            if (rangeData is not null) File.WriteAllBytes(Path.Combine(staging.FullName, RangeData.FileName), rangeData);
            foreach (var stale in output.EnumerateFiles("*.bin").Select(f => f.FullName)
                         .Concat([Path.Combine(output.FullName, "model.txt"), Path.Combine(output.FullName, RangeData.FileName)]))
                File.Delete(stale);
            // model.txt last: a folder with it is complete.
            foreach (var file in staging.EnumerateFiles().OrderBy(f => f.Name == "model.txt"))
                file.MoveTo(Path.Combine(output.FullName, file.Name));
        }
        catch when (!existed)
        {
            output.Delete(recursive: true);
            throw;
        }
        finally
        {
            if (Directory.Exists(staging.FullName)) staging.Delete(recursive: true);
        }
        return new ConversionResult(Path.GetFullPath(outputFolder), graph.Nodes.Count, writer.FilesWritten, writer.BytesWritten,
            writer.LargestWeightBytes, writer.Allocator.PeakBytes);
    }

    /// <summary>
    /// The engine's load-time folding again, now that static shape inference knows the shapes the export did
    /// not declare: a Shape of an activation whose inferred shape is fully known becomes a constant, which
    /// makes the Reshape, Expand and ConstantOfShape behind it constant-shaped, which makes more shapes known.
    /// Repeated until nothing more folds (an unsimplified export then needs no simplifier).
    /// </summary>
    private static ModelGraph FoldWithInferredShapes(ModelGraph graph)
    {
        var declared = graph.Inputs.Concat(graph.Outputs).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        while (true)
        {
            var shapes = StaticShapeInference.Infer(graph);
            TensorDescriptor? Shaped(TensorDescriptor? tensor) =>
                tensor is { IsWeight: false } && !declared.Contains(tensor.Name) && shapes.GetValueOrDefault(tensor.Name) is { Length: > 0 } shape && shape.All(d => d > 0)
                    ? tensor with { Shape = shape.Select(d => checked((int)d)).ToArray() }
                    : tensor;
            var shaped = graph with { Nodes = graph.Nodes.Select(n => n with { Inputs = n.Inputs.Select(Shaped).ToArray(), Outputs = n.Outputs.Select(t => Shaped(t)!).ToArray() }).ToList() };
            var folded = DeadNodeElimination.Apply(ConstantFolding.Apply(shaped));
            if (folded.Nodes.Count == graph.Nodes.Count) return graph;
            graph = folded;
        }
    }

    /// <summary>Writes the lines and weight files of one conversion.</summary>
    private sealed class FolderWriter(string folder, ModelConversionOptions options, ModelGraph graph, Dictionary<string, long[]?> shapes)
    {
        private readonly Dictionary<string, TensorDescriptor> _declared = graph.Inputs.Concat(graph.Outputs)
            .DistinctBy(t => t.Name).ToDictionary(t => t.Name, StringComparer.Ordinal);

        /// <summary>File name → the descriptor written with it, so a weight used twice is written once.</summary>
        private readonly Dictionary<string, string> _written = new(StringComparer.Ordinal);

        public NativeAllocator Allocator { get; } = new();
        public int FilesWritten { get; private set; }
        public long BytesWritten { get; private set; }
        public long LargestWeightBytes { get; private set; }

        /// <summary>The model.txt line of <paramref name="node"/>; its weights are written on the way.</summary>
        public string Line(GraphNode node)
        {
            var removed = new HashSet<string>(StringComparer.Ordinal);
            var inputs = new string[node.Inputs.Length];
            for (var i = 0; i < inputs.Length; i++)
            {
                var input = node.Inputs[i];
                inputs[i] = input is null ? "" : input.IsWeight ? Weight(node, i, input, removed) : Activation(input);
            }
            var line = new StringBuilder();
            line.Append(node.Name).Append(':').Append(node.OpType)
                .Append("*input:").AppendJoin(';', inputs)
                .Append("*output:").AppendJoin(';', node.Outputs.Select(Activation));
            var attributes = node.Attributes.Names
                .Where(name => !name.EndsWith(AttributeText.DTypeSuffix, StringComparison.Ordinal) && !removed.Contains(name))
                .Select(name => $"{name}:{node.Attributes.GetString(name, "")}")
                .ToList();
            if (attributes.Count > 0) line.Append('*').AppendJoin(';', attributes);
            var text = line.ToString();
            if (node.Name.Contains('*') || attributes.Any(a => a.Contains('*')) || text.Contains('\n') || text.Contains('\r'))
                throw new ModelFormatException($"{node}: its name or an attribute holds '*' or a line break, which model.txt cannot hold");
            return text;
        }

        private string Activation(TensorDescriptor tensor)
        {
            var name = NameEscaping.Escape(options.Renames.TryGetValue(tensor.Name, out var renamed) ? renamed : tensor.Name);
            // Graph inputs and outputs keep their declared shapes (unknown dimensions as 0), as in the original.
            var shape = _declared.TryGetValue(tensor.Name, out var declared)
                ? string.Join(',', declared.Shape)
                : shapes.GetValueOrDefault(tensor.Name) is { } inferred ? string.Join(',', inferred.Select(d => Math.Max(d, 0))) : "";
            return $"{name}({shape})";
        }

        /// <summary>Converts and writes a weight input the way the original's search_name does; returns its descriptor.</summary>
        private string Weight(GraphNode node, int index, TensorDescriptor weight, HashSet<string> removedAttributes)
        {
            var name = NameEscaping.Escape(weight.Name);
            var data = WeightFileReader.Read(weight, Allocator);
            LargestWeightBytes = Math.Max(LargestWeightBytes, data.ByteCount);
            string? typeText = null;
            try
            {
                if (node.OpType == "Mul" && index == 1 && data.ElementType == ElementType.Int64)
                    Replace(ref data, WeightEncoding.Int64ToFloat32(data, Allocator));
                if (options.Float16 && data.ElementType == ElementType.Float32)
                    Replace(ref data, WeightEncoding.ToFloat16(data, Allocator));
                if (options.UInt8 && data.ElementType == ElementType.Float32 && IsQuantizable(node.OpType, index) &&
                    WeightEncoding.Quantize(data, Allocator) is var (quantized, quantizedType))
                {
                    Replace(ref data, quantized);
                    typeText = quantizedType;
                }
                typeText ??= AttributeText.TypeName(data.ElementType);

                if (node.OpType == "Gemm" && index is 0 or 1)
                {
                    var attribute = index == 0 ? "transA" : "transB";
                    if (node.Attributes.GetInt(attribute, 0) != 0)
                    {
                        if (data.Shape.Length != 2) throw new ModelFormatException($"{node}: the {attribute} operand '{weight.Name}' is not 2-D");
                        removedAttributes.Add(attribute);
                        Replace(ref data, WeightEncoding.Transpose(data, 1, data.Shape[0], data.Shape[1], [data.Shape[1], data.Shape[0]], Allocator));
                        name += "_transposed";
                    }
                }
                else if (node.OpType == "Conv" && index is 0 or 1)
                {
                    // Conv1D kernels get a trailing 1 so both files hold 4-D kernels.
                    var shape = data.Shape.Length == 3 ? [.. data.Shape, 1] : data.Shape;
                    if (shape.Length != 4)
                        throw new ModelFormatException($"{node}: Conv kernel '{weight.Name}' has {data.Shape.Length} dimensions; model folders hold 1-D and 2-D convolutions (3-D or 4-D kernels)");
                    using (var nhwc = WeightEncoding.Transpose(data, shape[0], shape[1], shape[2] * shape[3], [shape[0], shape[2], shape[3], shape[1]], Allocator))
                        Save(name + "_nhwc", typeText, nhwc, nhwc.Shape);
                    return Save(name + "_nchw", typeText, data, shape);
                }
                return Save(name, typeText, data, data.Shape);
            }
            finally
            {
                data.Dispose();
            }
        }

        /// <summary>Writes <paramref name="data"/> as NAME.bin unless that file was written already; returns the descriptor.</summary>
        private string Save(string name, string typeText, Tensor data, int[] shape)
        {
            var descriptor = $"{typeText}:{string.Join(',', shape)}";
            var file = name + ".bin";
            if (_written.TryGetValue(file, out var earlier))
            {
                if (earlier == descriptor) return $"{file}({descriptor})";
                // The same constant converted differently for another use (e.g. an int64 both a Mul operand and
                // a shape): a file of its own, where the original would overwrite the first one.
                for (var k = 2; _written.TryGetValue(file, out earlier) && earlier != descriptor; k++) file = $"{name}_{k}.bin";
                if (earlier == descriptor) return $"{file}({descriptor})";
            }
            var path = Path.Combine(folder, file);
            using (var handle = File.OpenHandle(path, FileMode.Create, FileAccess.Write))
                RandomAccess.Write(handle, data.Bytes, 0);
            _written[file] = descriptor;
            FilesWritten++;
            BytesWritten += data.ByteCount;
            return $"{file}({descriptor})";
        }

        private static void Replace(ref Tensor data, Tensor next)
        {
            data.Dispose();
            data = next;
        }

        /// <summary>The original's exceptions: Conv bias, InstanceNormalization scale and bias, Resize scales stay float.</summary>
        private static bool IsQuantizable(string opType, int index) => !(
            (opType == "Conv" && index == 2) ||
            (opType == "InstanceNormalization" && index != 0) ||
            (opType == "Resize" && index == 2));
    }

    /// <summary>
    /// range_data.txt: <c>OPNAME,MIN,MAX</c> per line. OPNAME is not checked against the graph: a range for a
    /// node that folding removed is harmless.
    /// </summary>
    private static class RangeData
    {
        public const string FileName = "range_data.txt";

        /// <summary>The file's bytes, checked line by line.</summary>
        public static byte[] Read(string path)
        {
            var bytes = File.ReadAllBytes(path);
            var lineNumber = 0;
            foreach (var raw in Encoding.UTF8.GetString(bytes).Split('\n'))
            {
                lineNumber++;
                var line = raw.TrimEnd('\r');
                if (line.Length == 0) continue;
                var parts = line.Split(',');
                if (parts.Length != 3 || parts[0].Length == 0 || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var min) ||
                    !double.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var max) || min > max)
                    throw new ModelFormatException($"{path}:{lineNumber}: '{line}' is not OPNAME,MIN,MAX");
            }
            return bytes;
        }
    }
}
