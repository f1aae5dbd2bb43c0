using OnnxStream.Memory;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary>An input as a model run got it: its shape and values (int64 ids as floats).</summary>
internal sealed record RecordedInput(int[] Shape, float[] Values);

/// <summary>One model run: which component, a copy of its inputs by name, and the most tracked bytes it held (0 when the backend cannot tell).</summary>
internal sealed record RecordedRun(ComponentRole Role, IReadOnlyDictionary<string, RecordedInput> Inputs)
{
    public long PeakBytes { get; set; }
}

/// <summary>Runs models on <paramref name="inner"/> and keeps a copy of every run's inputs, to check what reaches each model.</summary>
internal sealed class RecordingBackend(IInferenceBackend inner) : IInferenceBackend
{
    /// <summary>The runs so far, in order.</summary>
    public List<RecordedRun> Runs { get; } = [];

    /// <summary>The runs of one component.</summary>
    public IEnumerable<RecordedRun> RunsOf(ComponentRole role) => Runs.Where(r => r.Role == role);

    public IComponentModel Open(string modelPath, ComponentRole role, IReadOnlyDictionary<string, int[]>? inputShapes = null) =>
        new Model(this, role, inner.Open(modelPath, role, inputShapes));

    private sealed class Model(RecordingBackend owner, ComponentRole role, IComponentModel model) : IComponentModel
    {
        public IReadOnlyList<ComponentInput> Inputs => model.Inputs;

        public IReadOnlyList<string> Outputs => model.Outputs;

        public NativeAllocator Allocator => model.Allocator;

        public ComponentOutputs Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string> outputs, CancellationToken cancellationToken)
        {
            var run = new RecordedRun(role, inputs.ToDictionary(p => p.Key, p => new RecordedInput(p.Value.Shape.ToArray(), p.Value.ElementType switch
            {
                ElementType.Int64 => p.Value.Span<long>().ToArray().Select(v => (float)v).ToArray(),
                ElementType.Int32 => p.Value.Span<int>().ToArray().Select(v => (float)v).ToArray(),
                _ => p.Value.Span<float>().ToArray(),
            })));
            owner.Runs.Add(run);
            var result = model.Run(inputs, outputs, cancellationToken);
            run.PeakBytes = result.PeakBytes;
            return result;
        }

        public void Dispose() => model.Dispose();
    }
}
