using OnnxStream.Graph.OnnxFormat;
using OnnxStream.Graph.Passes;

namespace OnnxStream.Graph;

/// <summary>Loads a model in whichever format it is: an OnnxStream model folder (model.txt) or a .onnx file.</summary>
public static class ModelLoader
{
    /// <summary>
    /// Loads <paramref name="path"/>: a <c>.onnx</c> file is read without reading its weights (they stay in
    /// the file and are read when their operation runs); a model.txt, or a folder holding one, is read by
    /// <see cref="ModelTextReader"/>; a folder with no model.txt but a <c>model.onnx</c> loads that. Both then
    /// go through the load-time passes (constant folding, static shape inference, dead node removal).
    /// </summary>
    /// <param name="path">A model folder, a model.txt or a .onnx file.</param>
    /// <param name="options">Load options; null for the defaults (every file the model names must be in its folder; declared shapes checked).</param>
    /// <exception cref="ModelFormatException">The model is malformed, uses what is not supported, or names a file outside its folder; the message says where.</exception>
    /// <exception cref="FileNotFoundException">There is no model at <paramref name="path"/>.</exception>
    /// <remarks>A model.txt operation output whose declared shape differs from the computed one is an error unless
    /// <see cref="ModelLoadOptions.Lenient"/>.</remarks>
    public static ModelGraph Load(string path, ModelLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new ModelLoadOptions();
        var onnx = Directory.Exists(path) ? Path.Combine(path, "model.onnx") : path;
        if (Directory.Exists(path) ? !File.Exists(Path.Combine(path, "model.txt")) && File.Exists(onnx) : path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            return OnnxModelReader.Read(onnx, options: options);
        return LoadTimePasses.Apply(ModelTextReader.Read(path, options), shapeMismatch: options.Lenient ? message => options.Warning?.Invoke(message) : null);
    }

    /// <summary>
    /// Loads <paramref name="path"/> as <see cref="Load(string, ModelLoadOptions?)"/> does, for inputs of other shapes than the
    /// model declares (another image size, a batch of two): the named graph inputs get the given shapes, every
    /// other activation forgets its declared shape (it was for the declared inputs), and the load-time passes
    /// then fold and infer everything again from the new shapes.
    /// </summary>
    /// <param name="path">A model folder, a model.txt or a .onnx file.</param>
    /// <param name="inputShapes">Shapes by graph input name (escaped or not); inputs not named keep their declared shape.</param>
    /// <param name="options">Load options; null for the defaults (every file the model names must be in its folder).</param>
    /// <exception cref="ModelFormatException">The model is malformed, names an input it does not have or a file outside its folder.</exception>
    public static ModelGraph Load(string path, IReadOnlyDictionary<string, int[]> inputShapes, ModelLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(inputShapes);
        var onnx = Directory.Exists(path) ? Path.Combine(path, "model.onnx") : path;
        var raw = Directory.Exists(path) && !File.Exists(Path.Combine(path, "model.txt")) && File.Exists(onnx) || path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)
            ? OnnxModelReader.Read(onnx, simplify: false, options: options)
            : ModelTextReader.Read(path, options);
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var (name, shape) in inputShapes)
        {
            var input = raw.Inputs.FirstOrDefault(i => i.Name == name || NameEscaping.TryUnescape(name, out var plain) && i.Name == plain)
                ?? throw new ModelFormatException($"{raw.Source}: the model has no input '{name}' (its inputs: {string.Join(", ", raw.Inputs.Select(i => i.Name))})");
            shapes[input.Name] = shape.ToArray();
        }
        TensorDescriptor? Reshape(TensorDescriptor? descriptor)
        {
            if (descriptor is null || descriptor.IsWeight) return descriptor;
            if (shapes.TryGetValue(descriptor.Name, out var shape)) return descriptor with { Shape = shape, HasStaticShape = shape.All(d => d > 0) };
            var isDeclaredInput = raw.Inputs.Any(i => i.Name == descriptor.Name);
            return isDeclaredInput ? descriptor : descriptor with { Shape = [], HasStaticShape = false };
        }
        var graph = raw with
        {
            Nodes = raw.Nodes.Select(n => n with { Inputs = n.Inputs.Select(Reshape).ToArray(), Outputs = n.Outputs.Select(o => Reshape(o)!).ToArray() }).ToList(),
            Inputs = raw.Inputs.Select(i => Reshape(i)!).ToList(),
            Outputs = raw.Outputs.Select(o => Reshape(o)!).ToList(),
        };
        return LoadTimePasses.Apply(graph);
    }
}
