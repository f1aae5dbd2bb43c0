using OnnxStream.Tensors;

namespace OnnxStream.Runtime;

/// <summary>One operation's entry in a run trace.</summary>
/// <param name="Node">The node's name.</param>
/// <param name="OpType">Its operator type.</param>
/// <param name="Milliseconds">Time to fetch its weights and run it.</param>
/// <param name="LiveBytes">Tracked bytes held right after it ran (before its inputs were freed).</param>
/// <param name="PeakBytes">The most tracked bytes held at once while it ran (its weights, inputs, outputs and scratch, and every other live tensor).</param>
public readonly record struct OperationTrace(string Node, string OpType, double Milliseconds, long LiveBytes, long PeakBytes);

/// <summary>The outputs of a run and what it cost. Dispose to free the outputs.</summary>
public sealed class RunResult : IDisposable
{
    internal RunResult(Dictionary<string, Tensor> outputs, long peakBytes, TimeSpan elapsed, IReadOnlyList<OperationTrace>? trace)
    {
        Outputs = outputs;
        PeakBytes = peakBytes;
        Elapsed = elapsed;
        Trace = trace;
    }

    /// <summary>Outputs by (unescaped) name.</summary>
    public IReadOnlyDictionary<string, Tensor> Outputs { get; }

    /// <summary>The most tracked native bytes held at once during the run (tensors, weights; not XNNPACK's packing).</summary>
    public long PeakBytes { get; }

    /// <summary>Wall time of the run.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Per-operation trace when requested.</summary>
    public IReadOnlyList<OperationTrace>? Trace { get; }

    /// <summary>Frees the outputs.</summary>
    public void Dispose()
    {
        foreach (var tensor in Outputs.Values) tensor.Dispose();
    }
}
