using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace OnnxStream.StableDiffusion.Download;

/// <summary>A file of a repository revision as the hub lists it.</summary>
/// <param name="Path">Its path in the repository (<c>/</c>-separated).</param>
/// <param name="Size">Its size in bytes.</param>
/// <param name="Sha256">The SHA-256 of its bytes (lowercase hex) for a Git LFS file; null for a plain Git file.</param>
/// <param name="BlobId">The Git blob id (the name a plain Git file's blob takes in the cache).</param>
internal sealed record HubFile(string Path, long Size, string? Sha256, string? BlobId)
{
    /// <summary>Its name in the cache's <c>blobs/</c>: the hub's ETag for it, which is the SHA-256 for LFS files and the Git blob id for the others.</summary>
    public string BlobName => Sha256 ?? BlobId!;
}

/// <summary>A revision's commit and files.</summary>
internal sealed record HubListing(string Commit, IReadOnlyList<HubFile> Files);

/// <summary>Raised for an answer worth trying again (a dropped connection, a timeout, 5xx, 408, 429).</summary>
internal sealed class TransientHubException(string message, Exception? innerException = null) : IOException(message, innerException);

/// <summary>
/// The two hub endpoints a download needs: <c>GET /api/models/REPO/revision/REVISION?blobs=true</c> (the commit, and
/// each file with its size and, for LFS files, its SHA-256) and <c>GET /REPO/resolve/COMMIT/PATH</c> (a file's bytes,
/// possibly through a redirect to a CDN, from an offset with <c>Range</c>).
/// </summary>
internal sealed partial class HubClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _endpoint;
    private readonly string? _token;
    private readonly HubDownloadOptions _options;

    public HubClient(HubDownloadOptions options)
    {
        _endpoint = ParseEndpoint(options.Endpoint);
        _token = options.Token;
        _options = options;
        RequestTimeout = options.RequestTimeout;
        _http = new HttpClient(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None, ConnectTimeout = RequestTimeout })
        {
            Timeout = Timeout.InfiniteTimeSpan, // RequestTimeout applies to each wait instead (see StallGuard)
        };
        var version = typeof(HubClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0";
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("OnnxStream.NET", version));
    }

    public string Endpoint => _endpoint;

    /// <summary>The endpoint without a trailing <c>/</c>.</summary>
    /// <exception cref="ArgumentException">It is not an absolute http or https address.</exception>
    public static string ParseEndpoint(string endpoint)
    {
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new ArgumentException($"The hub endpoint '{endpoint}' is not an absolute http or https address.", nameof(endpoint));
        return endpoint.TrimEnd('/');
    }

    public TimeSpan RequestTimeout { get; }

    /// <summary>The revision's commit and files.</summary>
    /// <exception cref="HttpRequestException">The hub could not be reached.</exception>
    /// <exception cref="TransientHubException">A timeout or a server error.</exception>
    /// <exception cref="HubDownloadException">The hub refused (the repository is missing, private or gated), answered something else
    /// than a listing, or a listing beyond <see cref="HubDownloadOptions.MaxListingBytes"/>, <see cref="HubDownloadOptions.MaxFiles"/>
    /// or <see cref="HubDownloadOptions.ListingTimeout"/>.</exception>
    public async Task<HubListing> ListAsync(string repoId, string revision, CancellationToken cancellationToken)
    {
        var address = $"{_endpoint}/api/models/{EscapePath(repoId)}/revision/{Uri.EscapeDataString(revision)}?blobs=true";
        using var whole = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        whole.CancelAfter(_options.ListingTimeout);
        using var guard = new StallGuard(RequestTimeout, whole.Token);
        try
        {
            using var response = await SendAsync(address, null, guard.Token).ConfigureAwait(false);
            ThrowOnFailure(response, $"{repoId} (revision {revision})", address);
            var limit = _options.MaxListingBytes;
            HubDownloadException TooLarge(string size) =>
                new($"The listing of {repoId} from {address} is {size} bytes, more than the {limit} allowed (HubDownloadOptions.MaxListingBytes).");
            if (response.Content.Headers.ContentLength is { } declared && declared > limit) throw TooLarge(declared.ToString(System.Globalization.CultureInfo.InvariantCulture));
            using var listing = new MemoryStream();
            await using (var body = await response.Content.ReadAsStreamAsync(guard.Token).ConfigureAwait(false))
            {
                var buffer = new byte[64 * 1024];
                int read;
                while ((read = await body.ReadAsync(buffer, guard.Token).ConfigureAwait(false)) > 0)
                {
                    if (listing.Length + read > limit) throw TooLarge("over " + limit);
                    listing.Write(buffer, 0, read);
                    guard.Restart();
                }
            }
            listing.Position = 0;
            using var json = JsonDocument.Parse(listing);
            return ParseListing(json.RootElement, repoId, address, _options.MaxFiles);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested && whole.IsCancellationRequested)
        {
            throw new HubDownloadException($"The listing of {repoId} from {address} took longer than {_options.ListingTimeout.TotalSeconds:0.###} s " +
                                           "(HubDownloadOptions.ListingTimeout).", e);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw guard.Timeout(address, e);
        }
        catch (JsonException e)
        {
            throw new HubDownloadException($"{address} answered something else than a repository listing: {e.Message}", e);
        }
    }

    /// <summary>The response to <c>GET</c> of a file from byte <paramref name="offset"/> on (the caller checks 200/206/416 and reads the body).</summary>
    public Task<HttpResponseMessage> GetFileAsync(string repoId, string commit, string path, long offset, CancellationToken cancellationToken) =>
        SendAsync(FileAddress(repoId, commit, path), offset > 0 ? new RangeHeaderValue(offset, null) : null, cancellationToken);

    /// <summary>Where a file of a commit is downloaded from.</summary>
    public string FileAddress(string repoId, string commit, string path) => $"{_endpoint}/{EscapePath(repoId)}/resolve/{Uri.EscapeDataString(commit)}/{EscapePath(path)}";

    /// <summary>Turns a refusal into its error: 401/403/404 at once (no retry helps), 5xx/408/429 as transient.</summary>
    public static void ThrowOnFailure(HttpResponseMessage response, string what, string address)
    {
        var status = (int)response.StatusCode;
        if (response.IsSuccessStatusCode || status == 416) return;
        if (status >= 500 || status is 408 or 429) throw new TransientHubException($"{address}: HTTP {status} {response.ReasonPhrase}");
        var hint = status switch
        {
            401 or 403 => " (a private or gated repository needs an access token: set HF_TOKEN)",
            404 => " (no such repository, revision or file; a private repository also answers 404 without a token)",
            _ => "",
        };
        throw new HubDownloadException($"The hub refused {what}: HTTP {status} {response.ReasonPhrase} from {address}{hint}.");
    }

    private async Task<HttpResponseMessage> SendAsync(string address, RangeHeaderValue? range, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, address);
        request.Headers.Range = range;
        // HttpClient drops Authorization when it follows a redirect, so the token goes to the endpoint only.
        if (_token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
    }

    private static HubListing ParseListing(JsonElement root, string repoId, string address, int maxFiles)
    {
        HubDownloadException Invalid(string what) => new($"The listing of {repoId} from {address} {what}.");
        if (root.ValueKind != JsonValueKind.Object) throw Invalid("is not a JSON object");
        var commit = root.TryGetProperty("sha", out var sha) && sha.ValueKind == JsonValueKind.String ? sha.GetString()! : throw Invalid("gives no commit (sha)");
        if (!SafeName().IsMatch(commit)) throw Invalid($"gives a commit '{commit}' that is not a plain name");
        if (!root.TryGetProperty("siblings", out var siblings) || siblings.ValueKind != JsonValueKind.Array) throw Invalid("lists no files (siblings)");
        if (siblings.GetArrayLength() > maxFiles) throw Invalid($"lists {siblings.GetArrayLength()} files, more than the {maxFiles} allowed (HubDownloadOptions.MaxFiles)");
        var files = new List<HubFile>();
        foreach (var sibling in siblings.EnumerateArray())
        {
            var path = String(sibling, "rfilename") ?? String(sibling, "path") ?? throw Invalid("has a file without a name (rfilename)");
            if (path.Length == 0 || path.StartsWith('/') || path.Contains('\\') || path.Split('/').Any(part => part is "" or "." or ".."))
                throw Invalid($"has a file path '{path}' that is not a plain relative path");
            var lfs = sibling.TryGetProperty("lfs", out var l) && l.ValueKind == JsonValueKind.Object ? l : (JsonElement?)null;
            var sha256 = lfs is { } pointer ? (String(pointer, "sha256") ?? String(pointer, "oid"))?.ToLowerInvariant() : null;
            var blobId = String(sibling, "blobId") ?? String(sibling, "oid");
            var size = Long(sibling, "size") ?? (lfs is { } p ? Long(p, "size") : null) ?? throw Invalid($"gives no size for {path} (asked with ?blobs=true)");
            if (sha256 is not null && !Sha256Hex().IsMatch(sha256)) throw Invalid($"gives {path} an SHA-256 '{sha256}' that is not 64 hex digits");
            if (sha256 is null && (blobId is null || !SafeName().IsMatch(blobId))) throw Invalid($"gives {path} no usable blob id (blobId)");
            files.Add(new HubFile(path, size, sha256, blobId));
        }
        return new HubListing(commit, files);
    }

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static long? Long(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number) && number >= 0 ? number : null;

    private static string EscapePath(string path) => string.Join('/', path.Split('/').Select(Uri.EscapeDataString));

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex SafeName();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Hex();

    public void Dispose() => _http.Dispose();
}

/// <summary>
/// A token that cancels when nothing has arrived for the request timeout: <see cref="Restart"/> after each chunk, so a
/// long body that keeps flowing never times out.
/// </summary>
internal sealed class StallGuard : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly TimeSpan _timeout;

    public StallGuard(TimeSpan timeout, CancellationToken cancellationToken)
    {
        _timeout = timeout;
        _source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _source.CancelAfter(timeout);
    }

    public CancellationToken Token => _source.Token;

    public void Restart() => _source.CancelAfter(_timeout);

    /// <summary>The transient error a stall becomes.</summary>
    public TransientHubException Timeout(string address, Exception cause) =>
        new($"{address}: timed out, nothing received for {_timeout.TotalSeconds:0.###} s", cause);

    public void Dispose() => _source.Dispose();
}
