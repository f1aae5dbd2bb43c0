using System.Buffers;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace OnnxStream.StableDiffusion.Download;

/// <summary>
/// Downloads a model repository revision from the Hugging Face hub into the hub cache (see
/// <see cref="HubDownloadOptions.CacheDirectory"/>) and gives its snapshot folder: several files at once, each
/// resumed with <c>Range</c> where it stopped (in this run after a dropped connection, or in an earlier one from its
/// <c>.incomplete</c> file), checked against the hub's size and, for LFS files, SHA-256 before it enters the cache.
/// </summary>
/// <remarks>
/// A file whose bytes do not match its SHA-256 is deleted and downloaded once more; a second mismatch is an error
/// naming it. Failures are <see cref="HubDownloadException"/>s naming the endpoint, the repository and the file.
/// </remarks>
public sealed partial class HubDownloader
{
    private const int BufferBytes = 256 * 1024;
    private const long ReportEveryBytes = 1 << 20;

    private readonly HubDownloadOptions _options;

    /// <summary>A downloader with <paramref name="options"/> (default: the environment's settings).</summary>
    /// <exception cref="ArgumentException">A setting is out of range or the endpoint is not an http(s) address.</exception>
    public HubDownloader(HubDownloadOptions? options = null)
    {
        _options = options ?? new HubDownloadOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxParallelDownloads, 1, nameof(options.MaxParallelDownloads));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxAttempts, 1, nameof(options.MaxAttempts));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.RetryDelay, TimeSpan.Zero, nameof(options.RetryDelay));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_options.RequestTimeout, TimeSpan.Zero, nameof(options.RequestTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxListingBytes, 1, nameof(options.MaxListingBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxFiles, 1, nameof(options.MaxFiles));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_options.ListingTimeout, TimeSpan.Zero, nameof(options.ListingTimeout));
        if (_options.DownloadTimeout <= TimeSpan.Zero && _options.DownloadTimeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(options.DownloadTimeout), _options.DownloadTimeout, "must be positive, or Timeout.InfiniteTimeSpan");
        HubClient.ParseEndpoint(_options.Endpoint);
    }

    /// <summary>
    /// Makes the cache hold <paramref name="revision"/> of <paramref name="repoId"/> (the files matching
    /// <paramref name="include"/>) and returns its snapshot.
    /// </summary>
    /// <param name="repoId">The model repository, <c>ORG/NAME</c>.</param>
    /// <param name="mode">Whether to use the cache, fill it, or download everything again.</param>
    /// <param name="include">
    /// Which files: paths or patterns (<c>*</c> any characters, <c>?</c> one; a pattern ending in <c>/</c> is a whole
    /// folder); null or empty for all of them. A pattern starting with <c>!</c> leaves out the files it matches.
    /// </param>
    /// <param name="revision">A branch, tag or commit (default <c>main</c>).</param>
    /// <param name="progress">Told as files start, advance and finish (from several threads; see <see cref="HubDownloadProgress"/>).</param>
    /// <param name="cancellationToken">Stops the download; finished files stay in the cache, partial ones resume next time.</param>
    /// <exception cref="HubDownloadException">The hub cannot be reached (and the cache has no snapshot of the revision), refuses,
    /// serves a file that does not match its listing or a listing beyond the options' limits; the files need more than the free
    /// disk space; the download takes longer than <see cref="HubDownloadOptions.DownloadTimeout"/>; or, offline, the cache
    /// lacks the revision.</exception>
    public async Task<HubSnapshot> DownloadAsync(string repoId, HubDownloadMode mode = HubDownloadMode.Auto, IReadOnlyList<string>? include = null,
        string revision = "main", IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (!RepoId().IsMatch(repoId)) throw new ArgumentException($"'{repoId}' is not a repository id (ORG/NAME).", nameof(repoId));
        if (revision.Length == 0 || revision.Contains('\\') || revision.Split('/').Any(part => part is "" or "." or ".."))
            throw new ArgumentException($"'{revision}' is not a revision (a branch, tag or commit).", nameof(revision));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.DownloadTimeout);
        try
        {
            return await DownloadWithinAsync(repoId, mode, include, revision, progress, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new HubDownloadException($"{repoId} (revision {revision}) from {_options.Endpoint}: the download took longer than " +
                                           $"{_options.DownloadTimeout.TotalSeconds:0.###} s (HubDownloadOptions.DownloadTimeout); what arrived stays in the cache and resumes next time.", e);
        }
    }

    /// <summary><see cref="DownloadAsync"/>, stopped by <paramref name="cancellationToken"/> (the caller's or the whole download's deadline).</summary>
    private async Task<HubSnapshot> DownloadWithinAsync(string repoId, HubDownloadMode mode, IReadOnlyList<string>? include, string revision,
        IProgress<HubDownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var cache = new HubCache(_options.CacheDirectory, repoId);
        if (mode == HubDownloadMode.Never || _options.Offline)
            return FromCache(cache, repoId, revision, mode == HubDownloadMode.Never ? "downloads are off" : "HF_HUB_OFFLINE is set", notice: null);

        using var client = new HubClient(_options);
        HubListing listing;
        try
        {
            listing = await ListAsync(client, repoId, revision, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsTransient(e) && !cancellationToken.IsCancellationRequested)
        {
            var offline = $"Cannot reach the hub at {client.Endpoint} to get {repoId} (revision {revision}): {e.Message}";
            if (mode == HubDownloadMode.Auto && cache.ResolveRevision(revision) is { } cached && Directory.Exists(cache.SnapshotFolder(cached)))
                return FromCache(cache, repoId, revision, "the hub cannot be reached", $"{offline}; using the cached snapshot {cached}.");
            throw new HubDownloadException($"{offline}. The cache ({cache.RepoFolder}) has no snapshot of it. Check the network connection " +
                                           "(or HF_ENDPOINT), or use a local models folder (--models-path).", e);
        }

        var wanted = Filter(include);
        var files = listing.Files.Where(f => wanted(f.Path)).ToList();
        if (files.Count == 0)
            throw new HubDownloadException($"None of the {listing.Files.Count} files of {repoId} at {listing.Commit} ({client.Endpoint}) " +
                                           $"matches {string.Join(", ", include ?? [])}.");
        // Files with the same bytes share one blob: each blob is fetched once.
        var blobs = files.Where(f => mode == HubDownloadMode.Force || !cache.HasBlob(f)).DistinctBy(f => f.BlobName).ToList();
        if (_options.CheckFreeSpace) CheckFreeSpace(cache, repoId, blobs);
        var tracker = new Tracker(progress, blobs.Count, blobs.Sum(f => f.Size));
        Directory.CreateDirectory(Path.Combine(cache.RepoFolder, "blobs"));
        var downloads = Parallel.ForEachAsync(blobs, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxParallelDownloads, CancellationToken = cancellationToken },
            (file, token) => new ValueTask(DownloadBlobAsync(client, cache, repoId, listing.Commit, file, fresh: mode == HubDownloadMode.Force, tracker, token)));
        try
        {
            await downloads.ConfigureAwait(false);
        }
        catch when (downloads.Exception?.InnerExceptions.OfType<HubDownloadException>().FirstOrDefault() is { } failure)
        {
            ExceptionDispatchInfo.Throw(failure); // the file that failed, not another one's cancellation
        }

        var fetched = blobs.Select(f => f.BlobName).ToHashSet();
        foreach (var file in files)
            if (fetched.Contains(file.BlobName) || !File.Exists(cache.SnapshotPath(listing.Commit, file)))
                cache.Link(listing.Commit, file);
        cache.WriteRef(revision, listing.Commit);
        return new HubSnapshot(repoId, listing.Commit, cache.SnapshotFolder(listing.Commit), blobs.Count, tracker.ReceivedBytes, Notice: null);
    }

    private static HubSnapshot FromCache(HubCache cache, string repoId, string revision, string why, string? notice)
    {
        var commit = cache.ResolveRevision(revision);
        if (commit is null || !SafeCommit().IsMatch(commit))
            throw new HubDownloadException($"{repoId} (revision {revision}) is not in the hub cache and {why}: {cache.RefPath(revision)} is missing. " +
                                           "Download it (onnxstream sd --download auto) or use a local models folder (--models-path).");
        var folder = cache.SnapshotFolder(commit);
        if (!Directory.Exists(folder))
            throw new HubDownloadException($"The hub cache's snapshot of {repoId} (revision {revision}) is missing: {folder} " +
                                           "(named by " + cache.RefPath(revision) + "). Download it again (--download force).");
        return new HubSnapshot(repoId, commit, folder, 0, 0, notice);
    }

    /// <summary>
    /// The listing, retried on timeouts and server errors; the last of those (after <see cref="HubDownloadOptions.MaxAttempts"/>)
    /// or an unreachable hub (at once) is rethrown for the caller to fall back on the cache.
    /// </summary>
    private async Task<HubListing> ListAsync(HubClient client, string repoId, string revision, CancellationToken cancellationToken)
    {
        for (var failures = 1; ; failures++)
        {
            try
            {
                return await client.ListAsync(repoId, revision, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e) && !(e is HttpRequestException h && IsUnreachable(h)) && failures < _options.MaxAttempts
                                      && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(_options.RetryDelay * Math.Pow(2, failures - 1), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Downloads one blob to its <c>.incomplete</c> file and, once its hash checks, moves it into <c>blobs/</c>.</summary>
    private async Task DownloadBlobAsync(HubClient client, HubCache cache, string repoId, string commit, HubFile file, bool fresh, Tracker tracker, CancellationToken cancellationToken)
    {
        var incomplete = cache.IncompletePath(file);
        if (fresh) File.Delete(incomplete);
        for (var check = 1; ; check++)
        {
            string? digest;
            await using (var partial = await PartialFile.OpenAsync(incomplete, file, tracker, cancellationToken).ConfigureAwait(false))
            {
                while (partial.Length < file.Size) await AttemptWithRetriesAsync(client, repoId, commit, partial, cancellationToken).ConfigureAwait(false);
                digest = partial.Digest();
            }
            if (file.Sha256 is null || digest == file.Sha256) break;
            File.Delete(incomplete);
            tracker.Rewind(file.Size);
            if (check == 2)
                throw new HubDownloadException($"{repoId}: {file.Path} from {client.FileAddress(repoId, commit, file.Path)} does not match the hub's SHA-256 " +
                                               $"{file.Sha256} (got {digest}), downloaded twice; the bytes were deleted. The hub or a proxy serves it corrupted: try again later.");
        }
        File.Move(incomplete, cache.BlobPath(file), overwrite: true);
        tracker.Complete(file);
    }

    /// <summary>Attempts until the file is whole: a retry resumes where the last attempt stopped; failures in a row are bounded.</summary>
    private async Task AttemptWithRetriesAsync(HubClient client, string repoId, string commit, PartialFile partial, CancellationToken cancellationToken)
    {
        for (var failures = 0; ;)
        {
            var before = partial.Length;
            try
            {
                await AttemptAsync(client, repoId, commit, partial, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (IsTransient(e) && !cancellationToken.IsCancellationRequested)
            {
                failures = partial.Length > before ? 1 : failures + 1;
                if (failures >= _options.MaxAttempts)
                    throw new HubDownloadException($"{repoId}: downloading {partial.File.Path} from {client.FileAddress(repoId, commit, partial.File.Path)} failed " +
                                                   $"{failures} times in a row, at byte {partial.Length} of {partial.File.Size}: {e.Message}", e);
                await Task.Delay(_options.RetryDelay * Math.Pow(2, failures - 1), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One request for the bytes of the file from where <paramref name="partial"/> ends; returns when the file is whole.</summary>
    private static async Task AttemptAsync(HubClient client, string repoId, string commit, PartialFile partial, CancellationToken cancellationToken)
    {
        var file = partial.File;
        var address = client.FileAddress(repoId, commit, file.Path);
        HubDownloadException Mismatch(string what) => new($"{repoId}: {address} {what}, but the hub lists {file.Path} at {file.Size} bytes.");
        var offset = partial.Length;
        using var guard = new StallGuard(client.RequestTimeout, cancellationToken);
        try
        {
            using var response = await client.GetFileAsync(repoId, commit, file.Path, offset, guard.Token).ConfigureAwait(false);
            HubClient.ThrowOnFailure(response, $"{repoId}: {file.Path}", address);
            var headers = response.Content.Headers;
            switch ((int)response.StatusCode)
            {
                case 206:
                    if (headers.ContentRange is not { HasRange: true } range) throw new TransientHubException($"{address}: 206 without a Content-Range");
                    if (range.Length is { } total && total != file.Size) throw Mismatch($"serves {total} bytes");
                    if (range.From != offset) throw new TransientHubException($"{address}: asked for bytes from {offset}, the server sent {range.From}-{range.To}");
                    break;
                case 200:
                    if (headers.ContentLength is { } length && length != file.Size) throw Mismatch($"serves {length} bytes");
                    partial.Restart(); // the server ignored Range (or none was sent): the whole file follows
                    break;
                case 416:
                    throw Mismatch($"has nothing from byte {offset} on (416)");
                default:
                    throw new HubDownloadException($"{repoId}: {address} answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}, not the file.");
            }
            if (headers.ContentEncoding.Count > 0) throw new HubDownloadException($"{repoId}: {address} sent the file encoded ({string.Join(", ", headers.ContentEncoding)}), not its bytes.");

            var body = await response.Content.ReadAsStreamAsync(guard.Token).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                var buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
                try
                {
                    int read;
                    while ((read = await body.ReadAsync(buffer.AsMemory(0, BufferBytes), guard.Token).ConfigureAwait(false)) > 0)
                    {
                        if (partial.Length + read > file.Size) throw Mismatch("sends more bytes");
                        await partial.AppendAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                        guard.Restart();
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
            if (partial.Length < file.Size) throw new TransientHubException($"{address}: the body ended at byte {partial.Length} of {file.Size}");
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw guard.Timeout(address, e);
        }
    }

    /// <summary>Fails when the listed sizes of <paramref name="blobs"/> (less what their <c>.incomplete</c> files hold) exceed the cache disk's free space.</summary>
    private static void CheckFreeSpace(HubCache cache, string repoId, List<HubFile> blobs)
    {
        Int128 needed = 0;
        foreach (var file in blobs)
        {
            var partial = new FileInfo(cache.IncompletePath(file));
            needed += file.Size - (partial.Exists ? Math.Min(partial.Length, file.Size) : 0);
        }
        long free;
        try
        {
            Directory.CreateDirectory(cache.RepoFolder);
            free = new DriveInfo(cache.RepoFolder).AvailableFreeSpace;
        }
        catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
        {
            return; // a file system that cannot say: the download fails as the disk fills, as before
        }
        if (needed > free)
            throw new HubDownloadException($"{repoId}: the {blobs.Count} file(s) to download take {needed} bytes ({(double)needed / (1 << 30):0.##} GiB) as listed, " +
                                           $"but the disk of {cache.RepoFolder} has {free} bytes free. Free some space, or set HF_HUB_CACHE to a cache on a larger disk.");
    }

    private static bool IsTransient(Exception e) => e is TransientHubException or HttpRequestException or (IOException and not HubDownloadException);

    private static bool IsUnreachable(HttpRequestException e) =>
        e.HttpRequestError is HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError or HttpRequestError.SecureConnectionError or HttpRequestError.ProxyTunnelError;

    /// <summary>
    /// A test for paths: true for those matching an including pattern (all when there is none) and no <c>!</c> pattern
    /// (<c>*</c>, <c>?</c>, trailing <c>/</c> = the folder).
    /// </summary>
    private static Func<string, bool> Filter(IReadOnlyList<string>? include)
    {
        Regex Compile(string pattern) => new(
            "^" + Regex.Escape(pattern.EndsWith('/') ? pattern + "*" : pattern).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal) + "$",
            RegexOptions.CultureInvariant | RegexOptions.Singleline);
        var patterns = include ?? [];
        var including = patterns.Where(pattern => !pattern.StartsWith('!')).Select(Compile).ToArray();
        var excluding = patterns.Where(pattern => pattern.StartsWith('!')).Select(pattern => Compile(pattern[1..])).ToArray();
        return path => (including.Length == 0 || including.Any(pattern => pattern.IsMatch(path))) && !excluding.Any(pattern => pattern.IsMatch(path));
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex RepoId();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex SafeCommit();

    /// <summary>
    /// A blob's <c>.incomplete</c> file open for appending, with the SHA-256 of its bytes so far (the bytes an earlier
    /// run left are hashed when it opens, so a resumed file is checked whole without reading it twice).
    /// </summary>
    private sealed class PartialFile : IAsyncDisposable
    {
        private readonly FileStream _stream;
        private readonly Tracker _tracker;
        private IncrementalHash? _hash;
        private long _reported;

        private PartialFile(FileStream stream, HubFile file, Tracker tracker)
        {
            _stream = stream;
            File = file;
            _tracker = tracker;
            _hash = file.Sha256 is null ? null : IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        }

        public HubFile File { get; }

        public long Length => _stream.Length;

        public static async Task<PartialFile> OpenAsync(string path, HubFile file, Tracker tracker, CancellationToken cancellationToken)
        {
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0, FileOptions.Asynchronous);
            var partial = new PartialFile(stream, file, tracker);
            try
            {
                if (stream.Length > file.Size) stream.SetLength(0);
                if (partial._hash is { } hash && stream.Length > 0)
                {
                    var buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
                    try
                    {
                        int read;
                        while ((read = await stream.ReadAsync(buffer.AsMemory(0, BufferBytes), cancellationToken).ConfigureAwait(false)) > 0) hash.AppendData(buffer, 0, read);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                    }
                }
                stream.Seek(0, SeekOrigin.End);
                partial._reported = stream.Length;
                tracker.Start(file, stream.Length);
                return partial;
            }
            catch
            {
                await partial.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        public async Task AppendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
        {
            await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
            _hash?.AppendData(bytes.Span);
            _tracker.Arrived(bytes.Length);
            if (Length - _reported >= ReportEveryBytes || Length == File.Size)
            {
                _reported = Length;
                _tracker.Report(File, Length);
            }
        }

        /// <summary>Empties the file (its bytes no longer count) to take the whole file from the start.</summary>
        public void Restart()
        {
            _tracker.Rewind(Length);
            _stream.SetLength(0);
            _reported = 0;
            if (_hash is not null)
            {
                _hash.Dispose();
                _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            }
        }

        /// <summary>The SHA-256 of the bytes (lowercase hex), or null for a file the hub gives none for.</summary>
        public string? Digest() => _hash is null ? null : Convert.ToHexStringLower(_hash.GetHashAndReset());

        public async ValueTask DisposeAsync()
        {
            _hash?.Dispose();
            await _stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The totals behind <see cref="HubDownloadProgress"/>, updated from every download at once.</summary>
    private sealed class Tracker(IProgress<HubDownloadProgress>? progress, int fileCount, long totalSize)
    {
        private long _bytes;
        private long _received;
        private int _done;

        /// <summary>Bytes received from the network.</summary>
        public long ReceivedBytes => Interlocked.Read(ref _received);

        /// <summary>A file starts with <paramref name="present"/> bytes already on disk.</summary>
        public void Start(HubFile file, long present)
        {
            Interlocked.Add(ref _bytes, present);
            Report(file, present);
        }

        public void Arrived(long count)
        {
            Interlocked.Add(ref _bytes, count);
            Interlocked.Add(ref _received, count);
        }

        /// <summary>Bytes on disk that were thrown away (a restart, a hash mismatch).</summary>
        public void Rewind(long count) => Interlocked.Add(ref _bytes, -count);

        public void Complete(HubFile file)
        {
            Interlocked.Increment(ref _done);
            Report(file, file.Size);
        }

        public void Report(HubFile file, long fileBytes) =>
            progress?.Report(new HubDownloadProgress(file.Path, fileBytes, file.Size, Interlocked.Read(ref _bytes), totalSize, Volatile.Read(ref _done), fileCount));
    }
}
