namespace OnnxStream.StableDiffusion.Download;

/// <summary>
/// Where and how <see cref="HubDownloader"/> fetches model repositories from the Hugging Face hub. A new instance
/// takes its defaults from the environment variables the hub's own client (huggingface_hub) reads, so a cache
/// shared with Python tools is found and reused.
/// </summary>
public sealed class HubDownloadOptions
{
    /// <summary>The public hub.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Options with the environment's settings (<c>HF_ENDPOINT</c>, <c>HF_HUB_CACHE</c>, <c>HF_HOME</c>, <c>HF_TOKEN</c>, <c>HF_HUB_OFFLINE</c>).</summary>
    public HubDownloadOptions() : this(Environment.GetEnvironmentVariable)
    {
    }

    /// <summary>Options with the settings that <paramref name="variable"/> (an environment lookup) gives.</summary>
    internal HubDownloadOptions(Func<string, string?> variable)
    {
        Endpoint = NonEmpty(variable("HF_ENDPOINT")) ?? DefaultEndpoint;
        CacheDirectory = DefaultCacheDirectory(variable);
        Token = NonEmpty(variable("HF_TOKEN"));
        Offline = NonEmpty(variable("HF_HUB_OFFLINE"))?.ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";
    }

    /// <summary>The hub's address (default <c>HF_ENDPOINT</c>, else https://huggingface.co): a mirror or a test server may stand in.</summary>
    public string Endpoint { get; set; }

    /// <summary>
    /// The hub cache (default <c>HF_HUB_CACHE</c>, else <c>HF_HOME/hub</c>, else <c>$XDG_CACHE_HOME/huggingface/hub</c>,
    /// else <c>~/.cache/huggingface/hub</c>), laid out as huggingface_hub lays it out: <c>models--ORG--NAME/</c> with
    /// <c>blobs/</c> (files named by their hash), <c>snapshots/COMMIT/</c> (the repository's tree, links to the blobs) and
    /// <c>refs/REVISION</c> (the commit a branch pointed to).
    /// </summary>
    public string CacheDirectory { get; set; }

    /// <summary>An access token (default <c>HF_TOKEN</c>), sent as <c>Authorization: Bearer</c> to the endpoint (not to the hosts it redirects to).</summary>
    public string? Token { get; set; }

    /// <summary>Never touch the network, only the cache (default: <c>HF_HUB_OFFLINE</c> is 1, on, yes or true).</summary>
    public bool Offline { get; set; }

    /// <summary>Files downloaded at once (default 4).</summary>
    public int MaxParallelDownloads { get; set; } = 4;

    /// <summary>
    /// The longest wait for a response's headers or for the next bytes of a body (default 30 s); it restarts with
    /// every chunk, so a large file on a slow link does not time out while data flows. A timeout is a failed attempt.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Failed attempts in a row, per file, before the download gives up (default 5). Retried: dropped connections,
    /// timeouts, 5xx, 408 and 429; each retry resumes where the file stopped. An attempt that brings bytes resets the count.
    /// </summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>Wait before the first retry (default 1 s), doubled before each later one.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The longest a repository's listing may be, in bytes (default 16 MiB; a repository of 20,000 files lists in about 6 MiB).
    /// A longer one is an error at once, whatever its Content-Length claims, so an endless answer cannot fill the memory.
    /// </summary>
    public long MaxListingBytes { get; set; } = 16L << 20;

    /// <summary>
    /// The most files a repository may list (default 20,000; the published OnnxStream repositories hold a few thousand).
    /// More is an error before anything is downloaded or linked: each listed file becomes an entry in the snapshot folder.
    /// </summary>
    public int MaxFiles { get; set; } = 20_000;

    /// <summary>
    /// The longest the listing may take from request to last byte (default 2 min), however steadily its bytes arrive
    /// (<see cref="RequestTimeout"/> bounds each wait). Exceeding it is an error, not retried.
    /// </summary>
    public TimeSpan ListingTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The longest a whole <see cref="HubDownloader.DownloadAsync"/> may take, listing and files (default 24 h;
    /// <see cref="Timeout.InfiniteTimeSpan"/> for no limit). Exceeding it is an error; what arrived stays and resumes next time.
    /// </summary>
    public TimeSpan DownloadTimeout { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// Before downloading, check that the cache's disk has room for the listed sizes of the files still to fetch (default
    /// true): a listing that claims more than the free space is an error naming both, before any byte is written.
    /// </summary>
    public bool CheckFreeSpace { get; set; } = true;

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static string DefaultCacheDirectory(Func<string, string?> variable)
    {
        if (NonEmpty(variable("HF_HUB_CACHE")) is { } hubCache) return ExpandHome(hubCache);
        var home = NonEmpty(variable("HF_HOME")) is { } hfHome
            ? ExpandHome(hfHome)
            : Path.Combine(NonEmpty(variable("XDG_CACHE_HOME")) is { } xdg ? ExpandHome(xdg) : ExpandHome("~/.cache"), "huggingface");
        return Path.Combine(home, "hub");
    }

    private static string ExpandHome(string path) => path == "~" || path.StartsWith("~/", StringComparison.Ordinal)
        ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.Length > 2 ? path[2..] : "")
        : path;
}
