using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Runtime;
using OnnxStream.Tensors;

namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>Runs the pipeline's models on OnnxStream's <see cref="InferenceSession"/>, one operation at a time.</summary>
public sealed class OnnxStreamBackend : IInferenceBackend
{
    private readonly Func<ComponentRole, ModelGraph, InferenceSessionOptions> _options;
    private readonly ModelLoadOptions? _load;

    /// <summary>
    /// A backend whose sessions take the options <paramref name="options"/> gives for each component. Models load with the
    /// default <see cref="ModelLoadOptions"/> (files only inside their folders); <see cref="For"/> follows
    /// <see cref="StableDiffusionOptions.ModelLoading"/>.
    /// </summary>
    public OnnxStreamBackend(Func<ComponentRole, InferenceSessionOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = (role, _) => options(role);
    }

    private OnnxStreamBackend(Func<ComponentRole, ModelGraph, InferenceSessionOptions> options, ModelLoadOptions load)
    {
        _options = options;
        _load = load;
    }

    /// <summary>
    /// The session options of a memory profile: <see cref="MemoryProfile.LowMemory"/> streams every weight with
    /// read-ahead and slices attention in 16 parts, as the original's low-memory mode; <see cref="MemoryProfile.Default"/>
    /// streams weights and runs memory-efficient (fused) attention; <see cref="MemoryProfile.Ram"/> also keeps the
    /// UNet's weights and packed operators in memory after its first step.
    /// </summary>
    public static OnnxStreamBackend ForProfile(MemoryProfile profile, int threads) =>
        For(new StableDiffusionOptions { MemoryProfile = profile, Threads = threads });

    /// <summary>
    /// The backend of a pipeline with <paramref name="options"/>: the sessions of <see cref="ForProfile"/> for its memory
    /// profile and threads, each operation reported to <see cref="StableDiffusionOptions.OperationCompleted"/> and checked as
    /// <see cref="StableDiffusionOptions.CheckFinite"/> says, models loaded with <see cref="StableDiffusionOptions.ModelLoading"/>, and a VAE
    /// decoder with uint8 weights run as W8A8 (static activation quantization) when it has a range_data.txt
    /// (<see cref="StableDiffusionOptions.DecoderRangeDataPath"/>, else its folder's), as the original runs <c>vae_decoder_qu8/</c>;
    /// without one it runs in float32 on its dequantized weights.
    /// </summary>
    public static OnnxStreamBackend For(StableDiffusionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (profile, threads, report, rangeData, checkFinite) =
            (options.MemoryProfile, options.Threads, options.OperationCompleted, options.DecoderRangeDataPath, options.CheckFinite);
        var allowOutside = options.ModelLoading.AllowWeightsOutsideModelFolder;
        return new((role, graph) =>
        {
            var session = new InferenceSessionOptions
            {
                Threads = threads,
                WeightsProvider = profile == MemoryProfile.Ram && role == ComponentRole.UNet ? WeightsProviderKind.Ram : WeightsProviderKind.Prefetch,
                Attention = profile == MemoryProfile.LowMemory ? AttentionMode.Sliced : AttentionMode.Fused,
                AttentionSlices = 16,
                OperationCompleted = report is null ? null : trace => report(role, trace),
                AllowWeightsOutsideModelFolder = allowOutside,
                CheckFinite = checkFinite,
            };
            if (role == ComponentRole.VaeDecoder && graph.Nodes.Any(n => n.Inputs.Any(i => i is { IsWeight: true, Quantization: not null })))
            {
                var ranges = rangeData ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(graph.Source)) ?? ".", "range_data.txt");
                if (File.Exists(ranges))
                {
                    session.ActivationQuantization = ActivationQuantization.Static;
                    session.RangeDataPath = rangeData; // null: the session reads the folder's, checked to be in it
                }
            }
            return session;
        }, options.ModelLoading);
    }

    /// <inheritdoc />
    public IComponentModel Open(string modelPath, ComponentRole role, IReadOnlyDictionary<string, int[]>? inputShapes = null)
    {
        var graph = inputShapes is null ? ModelLoader.Load(modelPath, _load) : ModelLoader.Load(modelPath, inputShapes, _load);
        return new Model(new InferenceSession(graph, _options(role, graph)));
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
