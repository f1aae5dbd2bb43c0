using Microsoft.ML.OnnxRuntime;
using OnnxStream.Memory;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary>
/// Runs .onnx models with ONNX Runtime (float32 and int64 inputs, float32 outputs) on one thread (the test models are tiny,
/// and ONNX Runtime's spinning thread pool is slow on a shared machine).
/// </summary>
internal sealed class OnnxRuntimeBackend : IInferenceBackend
{
    public IComponentModel Open(string modelPath, ComponentRole role, IReadOnlyDictionary<string, int[]>? inputShapes = null)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        return new Model(new InferenceSession(modelPath, options));
    }

    private sealed class Model(InferenceSession session) : IComponentModel
    {
        public IReadOnlyList<ComponentInput> Inputs { get; } = session.InputMetadata.Select(p => new ComponentInput(p.Key,
            p.Value.Dimensions.Select(d => Math.Max(d, 0)).ToArray(),
            p.Value.ElementType == typeof(long) ? ElementType.Int64 : p.Value.ElementType == typeof(int) ? ElementType.Int32 : ElementType.Float32)).ToList();

        public IReadOnlyList<string> Outputs { get; } = session.OutputMetadata.Keys.ToList();

        public NativeAllocator Allocator { get; } = new();

        public ComponentOutputs Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string> outputs, CancellationToken cancellationToken)
        {
            var values = inputs.Select(p => p.Value.ElementType switch
            {
                ElementType.Int64 => OrtValue.CreateTensorValueFromMemory(p.Value.Span<long>().ToArray(), p.Value.Shape.Select(d => (long)d).ToArray()),
                ElementType.Float32 => OrtValue.CreateTensorValueFromMemory(p.Value.Span<float>().ToArray(), p.Value.Shape.Select(d => (long)d).ToArray()),
                var other => throw new NotSupportedException(other.ToString()),
            }).ToList();
            try
            {
                using var runOptions = new RunOptions();
                using var results = session.Run(runOptions, inputs.Keys.ToList(), values, outputs.ToList());
                var tensors = new Dictionary<string, Tensor>();
                for (var i = 0; i < outputs.Count; i++)
                {
                    var shape = results[i].GetTensorTypeAndShape().Shape.Select(d => (int)d).ToArray();
                    tensors[outputs[i]] = Tensor.From<float>(results[i].GetTensorDataAsSpan<float>(), shape, Allocator);
                }
                return new ComponentOutputs(tensors, 0);
            }
            finally
            {
                foreach (var value in values) value.Dispose();
            }
        }

        public void Dispose() => session.Dispose();
    }
}
