namespace OnnxStream.Weights;

/// <summary>Where and how <see cref="HttpRangeWeightsProvider"/> fetches weights.</summary>
/// <remarks>
/// Set exactly one of <see cref="BaseAddress"/> (a model folder served as files) and
/// <see cref="FileAddress"/> (one .onnx or external data file holding every weight). Either way each
/// weight is fetched with a <c>Range</c> request for its <see cref="Graph.WeightLocation.Offset"/> and
/// <see cref="Graph.WeightLocation.Length"/>.
/// </remarks>
public sealed class HttpRangeWeightsProviderOptions
{
    /// <summary>
    /// A model folder served as files: a weight is fetched from this address plus the file name of its
    /// <see cref="Graph.WeightLocation.Path"/> (so a local model.txt, or .onnx with external data, can be
    /// loaded first and its weights streamed from the server). A missing final <c>/</c> is implied.
    /// </summary>
    public Uri? BaseAddress { get; set; }

    /// <summary>A single file served whole (an .onnx with its weights inside, or one external data file): every weight is a range of it.</summary>
    public Uri? FileAddress { get; set; }

    /// <summary>
    /// The client to use, for tests or shared connection settings; the provider does not dispose it and
    /// does not change its settings (its own <see cref="HttpClient.Timeout"/> still applies to response
    /// headers). When null the provider creates and disposes its own client.
    /// </summary>
    public HttpClient? HttpClient { get; set; }

    /// <summary>
    /// The longest wait for a response's headers or for the next bytes of its body (default 30 s); it
    /// restarts with every chunk received, so large weights on slow links do not time out while data
    /// flows. A timeout counts as a failed attempt.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Attempts per weight (default 3). Retried: connection failures, timeouts, 5xx, 408 and 429
    /// answers, bodies shorter than their range; a retry asks only for the bytes not yet received.
    /// Not retried: other 4xx answers (404, 416), a range other than the one asked for.
    /// </summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Wait before the first retry of a weight (default 200 ms), doubled before each later one.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Weights fetched ahead of the one asked for, in request order (default 2; 0 fetches each only when
    /// asked). Each holds a tensor of its size from when its fetch starts until it is used or the run ends.
    /// </summary>
    public int PrefetchCount { get; set; } = 2;

    /// <summary>
    /// What to do when a server ignores <c>Range</c> and answers 200 with the whole file: read it,
    /// discarding the bytes before the weight (the default: right for a model folder's one-weight files,
    /// costly for ranges deep in a single large file), or, when false, fail with an <see cref="IOException"/>.
    /// </summary>
    public bool AcceptWholeFileResponses { get; set; } = true;
}
