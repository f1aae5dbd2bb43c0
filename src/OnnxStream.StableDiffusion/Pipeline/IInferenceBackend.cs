using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>What runs the pipeline's models: OnnxStream (<see cref="OnnxStreamBackend"/>) or any other engine.</summary>
public interface IInferenceBackend
{
    /// <summary>
    /// Opens the model at <paramref name="modelPath"/> (a model folder or a .onnx file) for inputs of the
    /// given shapes, which may differ from the shapes the model declares (another resolution, a batch of two).
    /// </summary>
    /// <param name="modelPath">The model folder or .onnx file.</param>
    /// <param name="role">Which component it is (backends may tune memory per component).</param>
    /// <param name="inputShapes">Shapes of the inputs the pipeline will pass, by graph input name; null: as declared.</param>
    IComponentModel Open(string modelPath, ComponentRole role, IReadOnlyDictionary<string, int[]>? inputShapes = null);
}

/// <summary>The models of a pipeline.</summary>
public enum ComponentRole
{
    /// <summary>A CLIP text encoder.</summary>
    TextEncoder,
    /// <summary>The denoising UNet.</summary>
    UNet,
    /// <summary>The VAE decoder (whole or tile).</summary>
    VaeDecoder,
}

/// <summary>A graph input as a backend sees it.</summary>
/// <param name="Name">The name (unescaped).</param>
/// <param name="Shape">Dimensions; 0 = any.</param>
/// <param name="ElementType">The declared element type; null when the model does not say.</param>
public sealed record ComponentInput(string Name, int[] Shape, ElementType? ElementType);

/// <summary>One opened model.</summary>
public interface IComponentModel : IDisposable
{
    /// <summary>The graph inputs.</summary>
    IReadOnlyList<ComponentInput> Inputs { get; }

    /// <summary>The graph outputs' names.</summary>
    IReadOnlyList<string> Outputs { get; }

    /// <summary>Where the pipeline allocates this model's input tensors.</summary>
    NativeAllocator Allocator { get; }

    /// <summary>
    /// Runs the model; returns the named <paramref name="outputs"/> (graph outputs or intermediate tensors),
    /// owned by the caller. Inputs stay the caller's.
    /// </summary>
    ComponentOutputs Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string> outputs, CancellationToken cancellationToken);
}

/// <summary>Outputs of one run, by the names asked for. Dispose to free them.</summary>
public sealed class ComponentOutputs : IDisposable
{
    private readonly Dictionary<string, Tensor> _tensors;

    /// <summary>Takes ownership of <paramref name="tensors"/>.</summary>
    public ComponentOutputs(Dictionary<string, Tensor> tensors, long peakBytes)
    {
        _tensors = tensors;
        PeakBytes = peakBytes;
    }

    /// <summary>The output named <paramref name="name"/>.</summary>
    public Tensor this[string name] => _tensors.TryGetValue(name, out var tensor)
        ? tensor
        : throw new KeyNotFoundException($"No output '{name}' (outputs: {string.Join(", ", _tensors.Keys)}).");

    /// <summary>The most tracked native bytes the run held at once (0 when the backend cannot tell).</summary>
    public long PeakBytes { get; }

    /// <summary>Frees the outputs.</summary>
    public void Dispose()
    {
        foreach (var tensor in _tensors.Values) tensor.Dispose();
    }
}
