using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Weights;

/// <summary>
/// Streams each weight from an HTTP server with range requests, straight into the tensor's native
/// memory (no whole-weight managed buffer), fetching the next <see cref="HttpRangeWeightsProviderOptions.PrefetchCount"/>
/// weights of the request order while the current operation runs. Each weight is freed at
/// <see cref="Release"/>; weights fetched ahead and not used are freed when the run ends.
/// </summary>
/// <remarks>
/// Failures surface as an <see cref="IOException"/> naming the address, the weight and its byte range:
/// after <see cref="HttpRangeWeightsProviderOptions.MaxAttempts"/> for transient ones (timeouts, 5xx,
/// dropped connections, short bodies), at once for the others (404, 416, an unexpected range). Inline
/// constants are not fetched. Like every provider, it is used by one thread at a time.
/// </remarks>
public sealed class HttpRangeWeightsProvider : IWeightsProvider
{
    private const int SkipBufferBytes = 64 * 1024;

    private readonly HttpClient _client;
    private readonly bool _ownsClient;
    private readonly Uri? _baseAddress;
    private readonly Uri? _fileAddress;
    private readonly TimeSpan _timeout;
    private readonly int _maxAttempts;
    private readonly TimeSpan _retryDelay;
    private readonly int _prefetchCount;
    private readonly bool _acceptWholeFile;

    // Fetches under way or done and not yet handed out, by position in the request order.
    private readonly Dictionary<int, Task<Tensor>> _ahead = [];
    // Fetches whose tensor nobody will take (a cancelled wait, an out-of-order request): freed when the run ends.
    private readonly List<Task<Tensor>> _abandoned = [];
    private IReadOnlyList<TensorDescriptor> _order = [];
    private NativeAllocator _allocator = NativeAllocator.Shared;
    private CancellationTokenSource _run = new();
    private int _position;
    private bool _disposed;

    /// <summary>Creates the provider.</summary>
    /// <exception cref="ArgumentException">Not exactly one address is set, an address is not absolute http(s), or a setting is out of range.</exception>
    public HttpRangeWeightsProvider(HttpRangeWeightsProviderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if ((options.BaseAddress is null) == (options.FileAddress is null))
            throw new ArgumentException("Set exactly one of BaseAddress (a model folder) and FileAddress (a single file).", nameof(options));
        var address = options.BaseAddress ?? options.FileAddress!;
        if (!address.IsAbsoluteUri || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
            throw new ArgumentException($"'{address}' is not an absolute http or https address.", nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAttempts, 1, nameof(options.MaxAttempts));
        ArgumentOutOfRangeException.ThrowIfNegative(options.PrefetchCount, nameof(options.PrefetchCount));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RetryDelay, TimeSpan.Zero, nameof(options.RetryDelay));
        if (options.RequestTimeout <= TimeSpan.Zero && options.RequestTimeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(options.RequestTimeout), "The request timeout must be positive (or infinite).");
        if (options.BaseAddress is { } folder)
            _baseAddress = folder.AbsoluteUri.EndsWith('/') ? folder : new Uri(folder.AbsoluteUri + "/");
        _fileAddress = options.FileAddress;
        _timeout = options.RequestTimeout;
        _maxAttempts = options.MaxAttempts;
        _retryDelay = options.RetryDelay;
        _prefetchCount = options.PrefetchCount;
        _acceptWholeFile = options.AcceptWholeFileResponses;
        _ownsClient = options.HttpClient is null;
        _client = options.HttpClient ?? new HttpClient(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None })
        {
            Timeout = Timeout.InfiniteTimeSpan, // RequestTimeout is enforced per read instead
        };
    }

    /// <summary>The address a weight stored at <paramref name="location"/> is fetched from.</summary>
    public Uri AddressOf(WeightLocation location)
    {
        ArgumentNullException.ThrowIfNull(location);
        return _fileAddress ?? new Uri(_baseAddress!, Uri.EscapeDataString(Path.GetFileName(location.Path)));
    }

    /// <inheritdoc />
    public void Initialize(IReadOnlyList<TensorDescriptor> requestOrder, NativeAllocator allocator)
    {
        _order = requestOrder;
        _allocator = allocator;
    }

    /// <inheritdoc />
    public void BeginRun()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _position = 0;
        FetchAhead(-1);
    }

    /// <inheritdoc />
    /// <exception cref="IOException">The weight could not be fetched; the message names the address, the weight and its bytes.</exception>
    public Tensor Acquire(TensorDescriptor weight, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var location = weight.Location ?? throw new ArgumentException($"'{weight.Name}' is not a weight.", nameof(weight));
        var index = _position++;
        var inOrder = index < _order.Count && _order[index].Name == weight.Name && _order[index].Location == location;
        if (_ahead.Remove(index, out var task) && !inOrder)
        {
            _abandoned.Add(task);
            task = null;
        }
        if (location.Inline is not null)
        {
            if (inOrder) FetchAhead(index);
            return WeightFileReader.Read(weight, _allocator);
        }
        cancellationToken.ThrowIfCancellationRequested();
        task ??= Start(weight);
        if (inOrder) FetchAhead(index); // out of order, the request order no longer says what comes next
        try
        {
            return task.WaitAsync(cancellationToken).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _abandoned.Add(task); // still running: freed by EndRun once it stops
            throw;
        }
    }

    /// <summary>Starts fetching the weights after position <paramref name="index"/> that are not yet under way.</summary>
    private void FetchAhead(int index)
    {
        for (var next = Math.Max(0, index + 1); next <= index + _prefetchCount && next < _order.Count; next++)
            if (!_ahead.ContainsKey(next) && _order[next].Location is { Inline: null })
                _ahead[next] = Start(_order[next]);
    }

    private Task<Tensor> Start(TensorDescriptor weight)
    {
        var token = _run.Token;
        return Task.Run(() => FetchAsync(weight, token), token);
    }

    /// <inheritdoc />
    public void Release(TensorDescriptor weight, Tensor tensor) => tensor.Dispose();

    /// <inheritdoc />
    public void EndRun() => DropFetches();

    /// <summary>Cancels the fetches under way, waits for them to stop and frees what they fetched.</summary>
    private void DropFetches()
    {
        _run.Cancel();
        foreach (var task in _ahead.Values.Concat(_abandoned))
        {
            try
            {
                task.Wait();
            }
            catch (AggregateException)
            {
                // cancelled or failed: nothing to free
            }
            if (task.IsCompletedSuccessfully) task.Result.Dispose();
        }
        _ahead.Clear();
        _abandoned.Clear();
        _run.Dispose();
        _run = new CancellationTokenSource();
        _position = 0;
    }

    /// <summary>Stops and frees any fetch under way; disposes the client if the provider created it.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        DropFetches();
        _run.Dispose();
        if (_ownsClient) _client.Dispose();
    }

    private async Task<Tensor> FetchAsync(TensorDescriptor weight, CancellationToken token)
    {
        var location = weight.Location!;
        var tensor = Tensor.Allocate(weight.WeightType!.Value, weight.Shape, _allocator, weight.Quantization);
        try
        {
            if (tensor.ByteCount != location.Length)
                throw new ModelFormatException($"weight '{weight.Name}': {location.Length} bytes at {AddressOf(location)} do not fill {tensor}");
            if (location.Length > 0) await DownloadAsync(new Transfer(weight, AddressOf(location), tensor), token).ConfigureAwait(false);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    private async Task DownloadAsync(Transfer transfer, CancellationToken token)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await AttemptAsync(transfer, token).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (IsTransient(e) && !token.IsCancellationRequested)
            {
                if (attempt >= _maxAttempts)
                    throw new IOException($"{transfer}: failed after {attempt} attempt(s): {e.Message}", e);
                var delay = _retryDelay * Math.Pow(2, attempt - 1);
                await Task.Delay(delay, token).ConfigureAwait(false);
            }
        }
    }

    private static bool IsTransient(Exception e) =>
        e is TransientFailure or HttpRequestException or (IOException and not PermanentFailure);

    /// <summary>One request for the bytes of <paramref name="transfer"/> not yet received; advances its <see cref="Transfer.Done"/> as bytes arrive.</summary>
    private async Task AttemptAsync(Transfer transfer, CancellationToken token)
    {
        var location = transfer.Weight.Location!;
        var first = location.Offset + transfer.Done;
        var last = location.Offset + location.Length - 1;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
        timeout.CancelAfter(_timeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, transfer.Address);
            request.Headers.Range = new RangeHeaderValue(first, last);
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            var headers = response.Content.Headers;
            long skip;
            if (status == 206)
            {
                if (headers.ContentRange is { HasRange: true } range && (range.From != first || range.To != last))
                    throw new PermanentFailure(transfer, range.Length is { } total && total <= last
                        ? $"the file has only {total} bytes (truncated?)"
                        : $"asked for bytes {first}-{last}, the server sent {range.From}-{range.To}");
                if (headers.ContentLength is { } length && length != last - first + 1)
                {
                    if (length > last - first + 1)
                        throw new PermanentFailure(transfer, $"asked for {last - first + 1} bytes ({first}-{last}), the server announced {length}");
                    throw new TransientFailure($"truncated body: {length} bytes announced for the {last - first + 1} of {first}-{last}");
                }
                skip = 0;
            }
            else if (status == 200)
            {
                if (!_acceptWholeFile)
                    throw new PermanentFailure(transfer, "the server ignored the Range header and answered 200 with the whole file");
                if (headers.ContentLength is { } length && length <= last)
                    throw new PermanentFailure(transfer, $"the file has only {length} bytes (truncated?)");
                skip = first;
            }
            else if (status >= 500 || status is 408 or 429)
                throw new TransientFailure($"HTTP {status} {response.ReasonPhrase}");
            else
                throw new PermanentFailure(transfer, $"HTTP {status} {response.ReasonPhrase}");
            if (headers.ContentEncoding.Count > 0)
                throw new PermanentFailure(transfer, $"the body is encoded ({string.Join(", ", headers.ContentEncoding)}), not the file's bytes");

            var body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                if (skip > 0) await SkipAsync(body, skip, timeout).ConfigureAwait(false);
                var target = transfer.Memory;
                while (transfer.Done < target.Length)
                {
                    var read = await body.ReadAsync(target[(int)transfer.Done..], timeout.Token).ConfigureAwait(false);
                    if (read == 0)
                        throw new TransientFailure($"the body ended after {transfer.Done} of {target.Length} bytes (truncated)");
                    transfer.Done += read;
                    timeout.CancelAfter(_timeout);
                }
            }
        }
        catch (OperationCanceledException e) when (!token.IsCancellationRequested)
        {
            throw new TransientFailure($"timed out: nothing received for {_timeout.TotalSeconds:0.###} s", e);
        }
    }

    /// <summary>Discards the first <paramref name="count"/> bytes of a whole-file answer.</summary>
    private async Task SkipAsync(Stream body, long count, CancellationTokenSource timeout)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(SkipBufferBytes);
        try
        {
            while (count > 0)
            {
                var read = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), timeout.Token).ConfigureAwait(false);
                if (read == 0) throw new TransientFailure($"the whole-file body ended {count} bytes before the weight's range (truncated)");
                count -= read;
                timeout.CancelAfter(_timeout);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>One weight's fetch: where from, into what, and how many bytes have arrived (retries resume there).</summary>
    private sealed class Transfer(TensorDescriptor weight, Uri address, Tensor tensor)
    {
        public TensorDescriptor Weight { get; } = weight;
        public Uri Address { get; } = address;
        public Memory<byte> Memory { get; } = NativeBytes.Over(tensor);
        public long Done { get; set; }

        public override string ToString()
        {
            var location = Weight.Location!;
            return $"weight '{Weight.Name}' from {Address} bytes {location.Offset}-{location.Offset + location.Length - 1}";
        }
    }

    /// <summary>A failure worth another attempt; its message becomes part of the final error's.</summary>
    private sealed class TransientFailure(string message, Exception? inner = null) : Exception(message, inner);

    /// <summary>A failure another attempt would repeat: the error the caller gets.</summary>
    private sealed class PermanentFailure(Transfer transfer, string reason) : IOException($"{transfer}: {reason}");

    /// <summary>A <see cref="Memory{T}"/> over a tensor's native bytes, so async reads land in them directly (native memory needs no pinning).</summary>
    private sealed unsafe class NativeBytes : MemoryManager<byte>
    {
        private readonly byte* _pointer;
        private readonly int _length;

        private NativeBytes(byte* pointer, int length)
        {
            _pointer = pointer;
            _length = length;
        }

        public static Memory<byte> Over(Tensor tensor)
        {
            var bytes = tensor.Bytes;
            return new NativeBytes((byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(bytes)), bytes.Length).Memory;
        }

        public override Span<byte> GetSpan() => new(_pointer, _length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

        public override void Unpin() { }

        protected override void Dispose(bool disposing) { }
    }
}
