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
    /// <exception cref="ModelFormatException">The model is malformed or uses what is not supported; the message says where.</exception>
    /// <exception cref="FileNotFoundException">There is no model at <paramref name="path"/>.</exception>
    public static ModelGraph Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            var onnx = Path.Combine(path, "model.onnx");
            return !File.Exists(Path.Combine(path, "model.txt")) && File.Exists(onnx)
                ? OnnxModelReader.Read(onnx)
                : LoadTimePasses.Apply(ModelTextReader.Read(path));
        }
        return path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)
            ? OnnxModelReader.Read(path)
            : LoadTimePasses.Apply(ModelTextReader.Read(path));
    }
}
