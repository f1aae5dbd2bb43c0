using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Graph;

/// <summary>Where a weight's bytes are: a file, and a range of it.</summary>
/// <param name="Path">The file (a model folder's .bin, or an .onnx / external data file).</param>
/// <param name="Offset">First byte of the data in the file.</param>
/// <param name="Length">Bytes of data.</param>
public sealed record WeightLocation(string Path, long Offset, long Length);

/// <summary>
/// A tensor as a graph names it: an activation (graph input, intermediate or output, element type
/// decided at run time) or a weight stored with the model.
/// </summary>
/// <param name="Name">The name, unescaped (as the ONNX graph has it).</param>
/// <param name="Shape">Dimensions from the model; 0 means unknown.</param>
/// <param name="WeightType">A weight's element type; null for activations.</param>
/// <param name="Quantization">A quantized uint8 weight's parameters.</param>
/// <param name="Location">Where a weight's bytes are; null for activations.</param>
public sealed record TensorDescriptor(string Name, int[] Shape, ElementType? WeightType = null,
    Quantization? Quantization = null, WeightLocation? Location = null)
{
    /// <summary>Whether this is a weight stored with the model.</summary>
    public bool IsWeight => Location is not null;

    /// <inheritdoc />
    public override string ToString() => $"{Name}({(WeightType is { } t ? t + ":" : "")}{string.Join(',', Shape)})";
}
