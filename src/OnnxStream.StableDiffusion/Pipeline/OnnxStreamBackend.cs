using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>Runs the pipeline's models on OnnxStream's <see cref="InferenceSession"/>, one operation at a time.</summary>
public sealed class OnnxStreamBackend : IInferenceBackend
{
    private readonly Func<ComponentRole, InferenceSessionOptions> _options;

    /// <summary>A backend whose sessions take the options <paramref name="options"/> gives for each component.</summary>
    public OnnxStreamBackend(Func<ComponentRole, InferenceSessionOptions> options) => _options = options;

    /// <summary>
    /// The session options of a memory profile: <see cref="MemoryProfile.LowMemory"/> streams every weight with
    /// read-ahead and slices attention in 16 parts, as the original's low-memory mode; <see cref="MemoryProfile.Default"/>
    /// streams weights and runs memory-efficient (fused) attention; <see cref="MemoryProfile.Ram"/> also keeps the
    /// UNet's weights and packed operators in memory after its first step.
    /// </summary>
    public static OnnxStreamBackend ForProfile(MemoryProfile profile, int threads) => new(role => new InferenceSessionOptions
    {
        Threads = threads,
        WeightsProvider = profile == MemoryProfile.Ram && role == ComponentRole.UNet ? WeightsProviderKind.Ram : WeightsProviderKind.Prefetch,
        Attention = profile == MemoryProfile.LowMemory ? AttentionMode.Sliced : AttentionMode.Fused,
        AttentionSlices = 16,
    });

    /// <inheritdoc />
    public IComponentModel Open(string modelPath, ComponentRole role, IReadOnlyDictionary<string, int[]>? inputShapes = null)
    {
        var graph = inputShapes is null ? ModelLoader.Load(modelPath) : ModelLoader.Load(modelPath, inputShapes);
        return new Model(new InferenceSession(graph, _options(role)));
    }

    private sealed class Model(InferenceSession session) : IComponentModel
    {
        public IReadOnlyList<ComponentInput> Inputs { get; } =
            session.Graph.Inputs.Select(i => new ComponentInput(i.Name, i.Shape, i.ActivationType)).ToList();

        public IReadOnlyList<string> Outputs { get; } = session.Graph.Outputs.Select(o => o.Name).ToList();

        public NativeAllocator Allocator => session.Allocator;

        public ComponentOutputs Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string> outputs, CancellationToken cancellationToken)
        {
            var result = session.Run(inputs, outputs.Where(o => !Outputs.Contains(o)).ToList(), cancellationToken);
            var wanted = new Dictionary<string, Tensor>();
            foreach (var (name, tensor) in result.Outputs)
            {
                if (outputs.Contains(name)) wanted[name] = tensor;
                else tensor.Dispose();
            }
            return new ComponentOutputs(wanted, result.PeakBytes);
        }

        public void Dispose() => session.Dispose();
    }
}
