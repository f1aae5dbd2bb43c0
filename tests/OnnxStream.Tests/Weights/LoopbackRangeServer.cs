using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OnnxStream.Tests.Weights;

/// <summary>How <see cref="LoopbackRangeServer"/> answers the requests chosen to misbehave.</summary>
internal enum Misbehavior
{
    None,
    /// <summary>206 with the right Content-Range but a Content-Length (and body) one byte short.</summary>
    ShortContentLength,
    /// <summary>206 with the full Content-Length, half the body, then the connection closes.</summary>
    DropMidBody,
    /// <summary>500, empty body.</summary>
    Status500,
    /// <summary>404, empty body.</summary>
    Status404,
    /// <summary>416 Range Not Satisfiable.</summary>
    Status416,
    /// <summary>200 with the whole file, Range ignored.</summary>
    IgnoreRange,
    /// <summary>Reads the request and answers nothing until the server stops (or 10 s pass).</summary>
    Stall,
    /// <summary>The right status, headers and length, every byte of the body inverted.</summary>
    CorruptBody,
    /// <summary>200 without a Content-Length: the file, then spaces without end (until the client leaves or 10 s pass).</summary>
    Endless,
    /// <summary>200 without a Content-Length: the file a byte every 50 ms (bytes keep coming; the whole takes long).</summary>
    Trickle,
}

/// <summary>A request as the server saw it.</summary>
internal sealed record ServedRequest(string Path, string? Range, Misbehavior Mode, string? Authorization = null);

/// <summary>
/// A minimal HTTP/1.1 server on 127.0.0.1 (a port the system picks) serving in-memory files with
/// single-range support, one request per connection, that can misbehave on chosen requests. Every
/// connection ends by itself within 10 s; <see cref="Dispose"/> stops everything.
/// </summary>
internal sealed class LoopbackRangeServer : IDisposable
{
    private static readonly TimeSpan ConnectionLimit = TimeSpan.FromSeconds(10);

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Task, byte> _handlers = new();
    private readonly Dictionary<string, byte[]> _files;
    private readonly Task _accepting;
    private readonly object _gate = new();
    private Misbehavior _mode;
    private int _misbehaviorsLeft;
    private string? _onlyPath;
    private int _answering;
    private int _mostAnswering;

    public LoopbackRangeServer(IReadOnlyDictionary<string, byte[]> files)
    {
        _files = files.ToDictionary(p => "/" + p.Key, p => p.Value.ToArray());
        _listener.Start();
        BaseAddress = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
        _accepting = AcceptAsync();
    }

    public Uri BaseAddress { get; }

    public ConcurrentQueue<ServedRequest> Requests { get; } = new();

    /// <summary>How long each answer waits before it starts (holds requests open, to see how many a client makes at once).</summary>
    public TimeSpan ResponseDelay { get; set; }

    /// <summary>The most requests being answered at the same time so far (waiting out <see cref="ResponseDelay"/>).</summary>
    public int MostConcurrentRequests => Volatile.Read(ref _mostAnswering);

    /// <summary>The next <paramref name="times"/> requests (for <paramref name="onlyPath"/>, e.g. "/w0.bin", if given) get <paramref name="mode"/>.</summary>
    public void Misbehave(Misbehavior mode, int times = int.MaxValue, string? onlyPath = null)
    {
        lock (_gate)
        {
            _mode = mode;
            _misbehaviorsLeft = times;
            _onlyPath = onlyPath;
        }
    }

    private Misbehavior Take(string path)
    {
        lock (_gate)
        {
            if (_mode == Misbehavior.None || _misbehaviorsLeft <= 0 || (_onlyPath is not null && _onlyPath != path)) return Misbehavior.None;
            _misbehaviorsLeft--;
            return _mode;
        }
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            var handler = Task.Run(() => HandleAsync(client));
            _handlers.TryAdd(handler, 0);
            _ = handler.ContinueWith(t => _handlers.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task HandleAsync(TcpClient client)
    {
        using var connection = client;
        client.NoDelay = true; // the head and the body are separate writes: Nagle's delay would hold the body for the client's delayed ACK
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        limit.CancelAfter(ConnectionLimit);
        try
        {
            var stream = client.GetStream();
            var head = await ReadHeadAsync(stream, limit.Token);
            if (head is null) return;
            var lines = head.Split("\r\n");
            var path = lines[0].Split(' ') is [_, var target, ..] ? target : "/";
            string? Header(string name) => lines.Skip(1).FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))?[(name.Length + 1)..].Trim();
            var range = Header("Range");
            var mode = Take(path);
            Requests.Enqueue(new ServedRequest(path, range, mode, Header("Authorization")));
            // Counted from the request's arrival to the end of its delay, before any byte of the response: a client that
            // starts its next request as soon as it has read a response is then never counted twice (counted to the end of
            // the response, the next request could arrive before this handler's continuation had left).
            var answering = Interlocked.Increment(ref _answering);
            try
            {
                for (var most = _mostAnswering; answering > most; most = _mostAnswering)
                    Interlocked.CompareExchange(ref _mostAnswering, answering, most);
                if (ResponseDelay > TimeSpan.Zero) await Task.Delay(ResponseDelay, limit.Token);
            }
            finally
            {
                Interlocked.Decrement(ref _answering);
            }
            await RespondAsync(stream, path, range, mode, limit.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away, or the connection's time is up.
        }
    }

    private static async Task<string?> ReadHeadAsync(NetworkStream stream, CancellationToken token)
    {
        var head = new List<byte>();
        var buffer = new byte[1024];
        while (head.Count < 16 * 1024)
        {
            var read = await stream.ReadAsync(buffer, token);
            if (read == 0) return null;
            head.AddRange(buffer.AsSpan(0, read));
            var text = Encoding.ASCII.GetString(head.ToArray());
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0) return text[..end];
        }
        return null;
    }

    private async Task RespondAsync(NetworkStream stream, string path, string? range, Misbehavior mode, CancellationToken token)
    {
        switch (mode)
        {
            case Misbehavior.Stall:
                await Task.Delay(Timeout.Infinite, token);
                return;
            case Misbehavior.Status500:
                await WriteHeadAsync(stream, "500 Internal Server Error", 0, null, token);
                return;
        }
        if (mode == Misbehavior.Status404 || !_files.TryGetValue(path, out var file))
        {
            await WriteHeadAsync(stream, "404 Not Found", 0, null, token);
            return;
        }
        long first = 0, last = file.Length - 1;
        string? contentRange = null;
        if (range is not null && mode != Misbehavior.IgnoreRange)
        {
            // bytes=FIRST-[LAST]
            var spec = range.StartsWith("bytes=", StringComparison.Ordinal) ? range[6..].Split('-') : [];
            if (spec.Length != 2 || !long.TryParse(spec[0], out first) || mode == Misbehavior.Status416 || first >= file.Length)
            {
                await WriteHeadAsync(stream, "416 Range Not Satisfiable", 0, $"Content-Range: bytes */{file.Length}", token);
                return;
            }
            if (spec[1].Length > 0) last = Math.Min(last, long.Parse(spec[1]));
            contentRange = $"Content-Range: bytes {first}-{last}/{file.Length}";
        }
        var body = file.AsMemory((int)first, (int)(last - first + 1));
        var status = contentRange is null ? "200 OK" : "206 Partial Content";
        switch (mode)
        {
            case Misbehavior.ShortContentLength:
                await WriteHeadAsync(stream, status, body.Length - 1, contentRange, token);
                await stream.WriteAsync(body[..^1], token);
                break;
            case Misbehavior.DropMidBody:
                await WriteHeadAsync(stream, status, body.Length, contentRange, token);
                await stream.WriteAsync(body[..(body.Length / 2)], token);
                await stream.FlushAsync(token);
                break; // closing now leaves the body short
            case Misbehavior.Endless:
                await WriteHeadAsync(stream, "200 OK", null, null, token);
                await stream.WriteAsync(file, token);
                var spaces = new byte[64 * 1024];
                Array.Fill(spaces, (byte)' ');
                while (true) await stream.WriteAsync(spaces, token);
            case Misbehavior.Trickle:
                await WriteHeadAsync(stream, "200 OK", null, null, token);
                for (var i = 0; i < file.Length; i++)
                {
                    await stream.WriteAsync(file.AsMemory(i, 1), token);
                    await Task.Delay(50, token);
                }
                break;
            case Misbehavior.CorruptBody:
                await WriteHeadAsync(stream, status, body.Length, contentRange, token);
                await stream.WriteAsync(body.ToArray().Select(b => (byte)~b).ToArray(), token);
                break;
            default:
                await WriteHeadAsync(stream, status, body.Length, contentRange, token);
                await stream.WriteAsync(body, token);
                break;
        }
    }

    /// <summary>The status line and headers; a null <paramref name="contentLength"/> leaves the body's end to the connection's close.</summary>
    private static Task WriteHeadAsync(NetworkStream stream, string status, long? contentLength, string? extra, CancellationToken token)
    {
        var length = contentLength is null ? "" : $"Content-Length: {contentLength}\r\n";
        var head = $"HTTP/1.1 {status}\r\n{length}Accept-Ranges: bytes\r\nConnection: close\r\n" +
                   (extra is null ? "" : extra + "\r\n") + "\r\n";
        return stream.WriteAsync(Encoding.ASCII.GetBytes(head), token).AsTask();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _accepting.Wait(TimeSpan.FromSeconds(5));
        Task.WaitAll(_handlers.Keys.ToArray(), TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }
}
