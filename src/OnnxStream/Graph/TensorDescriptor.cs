using OnnxStream.Kernels;
using OnnxStream.Tensors;

namespace OnnxStream.Graph;

/// <summary>
/// Where a weight's bytes are: a range of a file, or, for the small constants a loader creates or folds
/// (shape vectors, scalars), the bytes themselves.
/// </summary>
/// <param name="Path">The file (a model folder's .bin, an .onnx or an external data file); for inline data, where it came from.</param>
/// <param name="Offset">First byte of the data in the file.</param>
/// <param name="Length">Bytes of data.</param>
/// <param name="Inline">The bytes, when they are not read from <paramref name="Path"/>.</param>
public sealed record WeightLocation(string Path, long Offset, long Length, byte[]? Inline = null)
{
    /// <summary>Bytes above which a constant must stay in its file rather than inline.</summary>
    public const int MaxInlineBytes = 64 * 1024;
}

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

    /// <summary>
    /// An activation's element type when the model declares it (ONNX value_info) or load-time shape
    /// inference found it; null when only a run will tell.
    /// </summary>
    public ElementType? ActivationType { get; init; }

    /// <summary>
    /// Whether <see cref="Shape"/> is exact: every weight's is; an activation's when the model declares all
    /// its dimensions or load-time shape inference found them (an empty shape is then a scalar, not unknown).
    /// </summary>
    public bool HasStaticShape
    {
        get => IsWeight || _staticShape;
        init => _staticShape = value;
    }

    private readonly bool _staticShape;

    /// <inheritdoc />
    public override string ToString() => $"{Name}({(WeightType is { } t ? t + ":" : "")}{string.Join(',', Shape)})";
}
