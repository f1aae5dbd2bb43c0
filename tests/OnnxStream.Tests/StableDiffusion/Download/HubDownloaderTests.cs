using System.Text;
using OnnxStream.Graph;
using OnnxStream.StableDiffusion.Download;
using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.Tests.Weights;

namespace OnnxStream.Tests.StableDiffusion.Download;

/// <summary><see cref="HubDownloader"/> against a fake hub on loopback serving (parts of) ../shared/models/tiny-sd15.</summary>
[Category("Models")]
internal sealed class HubDownloaderTests
{
    private const string Repo = "vitoplantamura/stable-diffusion-1.5-onnxstream";
    private readonly List<FakeHub> _hubs = [];
    private string _cache = null!;

    [SetUp]
    public void CreateCache() => _cache = Directory.CreateTempSubdirectory("hub-cache-").FullName;

    [TearDown]
    public void DeleteCacheAndStopHubs()
    {
        foreach (var hub in _hubs) hub.Dispose();
        _hubs.Clear();
        Directory.Delete(_cache, true);
    }

    /// <summary>A hub serving <see cref="FakeHub.FewFiles"/> until the test ends.</summary>
    private FakeHub FewFilesHub()
    {
        var hub = FakeHub.ServingTinySd15(Repo, FakeHub.FewFiles);
        _hubs.Add(hub);
        return hub;
    }

    /// <summary>
    /// Downloads the few files with the largest weight answered <paramref name="mode"/> (the first <paramref name="times"/>
    /// times), after an earlier run left its first <paramref name="partialBytes"/> in its <c>.incomplete</c> file; from
    /// <paramref name="hub"/> when given (a test expecting an error makes it first, so that its skip without ../shared is
    /// not caught as the error), else from a new <see cref="FewFilesHub"/>.
    /// </summary>
    private async Task<(FakeHub Hub, string File, HubSnapshot Snapshot)> DownloadWithLargestWeight(Misbehavior mode, int times = int.MaxValue, int partialBytes = 0,
        Action<HubDownloadOptions>? configure = null, FakeHub? hub = null)
    {
        hub ??= FewFilesHub();
        var file = hub.Files.Where(f => FakeHub.IsLfs(f.Key)).MaxBy(f => f.Value.Length).Key;
        if (partialBytes > 0)
        {
            Directory.CreateDirectory(Path.Combine(RepoFolder, "blobs"));
            File.WriteAllBytes(BlobPath(file, hub.Files[file]) + ".incomplete", hub.Files[file][..partialBytes]);
        }
        hub.Server.Misbehave(mode, times, onlyPath: hub.ResolvePath(file));
        var options = Options(hub.Endpoint);
        configure?.Invoke(options);
        var snapshot = await new HubDownloader(options).DownloadAsync(Repo);
        AssertSnapshotHolds(snapshot, hub, hub.Files.Keys);
        return (hub, file, snapshot);
    }

    /// <summary>Options that ignore this machine's HF_* variables: the fake hub, a fresh cache, quick retries.</summary>
    private HubDownloadOptions Options(string endpoint) => new(_ => null)
    {
        Endpoint = endpoint,
        CacheDirectory = _cache,
        RetryDelay = TimeSpan.FromMilliseconds(10),
        RequestTimeout = TimeSpan.FromSeconds(5),
    };

    private string RepoFolder => Path.Combine(_cache, "models--vitoplantamura--stable-diffusion-1.5-onnxstream");

    private string BlobPath(string path, byte[] bytes) => Path.Combine(RepoFolder, "blobs", FakeHub.BlobName(path, bytes));

    private static void AssertSnapshotHolds(HubSnapshot snapshot, FakeHub hub, IEnumerable<string> paths)
    {
        foreach (var path in paths)
            Assert.That(File.ReadAllBytes(Path.Combine(snapshot.Folder, path)), Is.EqualTo(hub.Files[path]), path);
    }

    /// <summary>The bytes of the hub's files (those of <paramref name="paths"/>, else all), each blob once.</summary>
    private static long DistinctBytes(FakeHub hub, IReadOnlyCollection<string>? paths = null) =>
        hub.Files.Where(f => paths is null || paths.Contains(f.Key)).DistinctBy(f => FakeHub.BlobName(f.Key, f.Value)).Sum(f => (long)f.Value.Length);

    [Test]
    public async Task Downloads_the_tiny_pipeline_in_the_hub_cache_layout_and_its_models_load_from_the_snapshot()
    {
        var repository = PublishedModelRepository.StableDiffusion15;
        using var hub = FakeHub.ServingTinySd15(repository.RepoId, FakeHub.PipelineFiles);
        var reports = new List<HubDownloadProgress>();
        var snapshot = await new HubDownloader(Options(hub.Endpoint)).DownloadAsync(repository.RepoId, HubDownloadMode.Auto, repository.IncludePatterns,
            progress: new SynchronousProgress<HubDownloadProgress>(reports));

        // Not the convolutions' _nhwc.bin copies: the engine reads the _nchw.bin files model.txt names.
        var wanted = hub.Files.Keys.Where(path => path != "README.txt" && !path.EndsWith("_nhwc.bin", StringComparison.Ordinal)).ToArray();
        var blobs = wanted.Select(path => FakeHub.BlobName(path, hub.Files[path])).Distinct().ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(snapshot.Commit, Is.EqualTo(FakeHub.Commit));
            Assert.That(snapshot.Folder, Is.EqualTo(Path.Combine(RepoFolder, "snapshots", FakeHub.Commit)));
            Assert.That(File.ReadAllText(Path.Combine(RepoFolder, "refs", "main")), Is.EqualTo(FakeHub.Commit));
            Assert.That(hub.Files.Keys.Count(path => path.EndsWith("_nhwc.bin", StringComparison.Ordinal)), Is.GreaterThan(0));
            Assert.That(hub.Server.Requests.Where(request => request.Path.Contains("_nhwc.bin", StringComparison.Ordinal)), Is.Empty, "no _nhwc.bin downloaded");
            Assert.That(snapshot.FilesDownloaded, Is.EqualTo(blobs.Length));
            Assert.That(snapshot.BytesDownloaded, Is.EqualTo(DistinctBytes(hub, wanted)));
            Assert.That(Directory.GetFiles(Path.Combine(RepoFolder, "blobs")).Select(Path.GetFileName), Is.EquivalentTo(blobs), "no .incomplete left");
            Assert.That(File.Exists(Path.Combine(snapshot.Folder, "README.txt")), Is.False, "outside the include patterns");
            Assert.That(hub.RequestsFor("README.txt"), Is.Empty);
            Assert.That(reports[^1].FilesDone, Is.EqualTo(reports[^1].FileCount));
            Assert.That(reports[^1].TotalBytes, Is.EqualTo(reports[^1].TotalSize));
        });
        AssertSnapshotHolds(snapshot, hub, wanted);
        var entry = new FileInfo(Path.Combine(snapshot.Folder, "unet_fp16", "model.txt"));
        Assert.That(entry.LinkTarget, Is.EqualTo(Path.Combine("..", "..", "..", "blobs", FakeHub.GitBlobId(hub.Files["unet_fp16/model.txt"]))),
            "a relative link to the blob, as huggingface_hub makes");

        // The pipeline finds its models in the snapshot, and each loads through the links (every weight file's size is
        // checked); SdDownloadCommandTests generates from such a snapshot.
        var folder = new StableDiffusionPipeline(new StableDiffusionOptions { ModelsPath = snapshot.Folder, Prompt = "a red fox", Steps = 1 }).Folder;
        Assert.That((folder.Layout, folder.Kind), Is.EqualTo((ModelFolderLayout.OnnxStream, ModelKind.StableDiffusion15)));
        foreach (var model in new[] { folder.TextEncoder, folder.UNet, folder.VaeDecoder })
            Assert.That(ModelLoader.Load(model).Nodes, Is.Not.Empty, model);

        var requests = hub.Server.Requests.Count;
        var again = await new HubDownloader(Options(hub.Endpoint)).DownloadAsync(repository.RepoId, HubDownloadMode.Auto, repository.IncludePatterns);
        Assert.That((again.Folder, again.FilesDownloaded, again.BytesDownloaded), Is.EqualTo((snapshot.Folder, 0, 0L)));
        Assert.That(hub.Server.Requests.Count, Is.EqualTo(requests + 1), "a complete snapshot costs one listing, no file");
    }

    [Test]
    public async Task Downloads_several_files_at_once_up_to_the_limit()
    {
        var hub = FewFilesHub();
        hub.Server.ResponseDelay = TimeSpan.FromMilliseconds(200);
        var options = Options(hub.Endpoint);
        options.MaxParallelDownloads = 3;
        var snapshot = await new HubDownloader(options).DownloadAsync(Repo);
        Assert.That(hub.Server.MostConcurrentRequests, Is.EqualTo(3));
        AssertSnapshotHolds(snapshot, hub, hub.Files.Keys);
    }

    [Test]
    public async Task A_dropped_connection_resumes_with_a_range_request_and_gives_the_same_bytes()
    {
        var (hub, file, snapshot) = await DownloadWithLargestWeight(Misbehavior.DropMidBody, times: 1);
        var requests = hub.RequestsFor(file);
        Assert.That(requests.Select(r => r.Mode), Is.EqualTo(new[] { Misbehavior.DropMidBody, Misbehavior.None }));
        Assert.That(requests[0].Range, Is.Null);
        var resumedAt = long.Parse(requests[1].Range!["bytes=".Length..^1]);
        TestContext.Out.WriteLine($"{file}: {hub.Files[file].Length} bytes, dropped and resumed with Range: {requests[1].Range}");
        Assert.That(requests[1].Range, Does.Match("^bytes=[0-9]+-$"));
        Assert.That(resumedAt, Is.InRange(1, hub.Files[file].Length / 2), "the resumed request asks only for what did not arrive");
        Assert.That(snapshot.BytesDownloaded, Is.EqualTo(DistinctBytes(hub)), "no byte fetched twice");
    }

    [Test]
    public async Task Resumes_the_partial_file_an_earlier_run_left()
    {
        var (hub, file, snapshot) = await DownloadWithLargestWeight(Misbehavior.None, partialBytes: 1000);
        Assert.That(hub.RequestsFor(file).Select(r => r.Range), Is.EqualTo(new[] { "bytes=1000-" }));
        Assert.That(snapshot.BytesDownloaded, Is.EqualTo(DistinctBytes(hub) - 1000));
    }

    [Test]
    public async Task A_server_that_ignores_range_gives_the_whole_file_again()
    {
        var (hub, file, snapshot) = await DownloadWithLargestWeight(Misbehavior.IgnoreRange, partialBytes: 1000);
        Assert.That(hub.RequestsFor(file).Select(r => (r.Range, r.Mode)), Is.EqualTo(new[] { ("bytes=1000-", Misbehavior.IgnoreRange) }));
        Assert.That(snapshot.BytesDownloaded, Is.EqualTo(DistinctBytes(hub)), "the 200 answer's whole file");
    }

    [Test]
    public async Task A_corrupted_download_fails_its_sha256_and_is_downloaded_again()
    {
        var (hub, file, _) = await DownloadWithLargestWeight(Misbehavior.CorruptBody, times: 1);
        Assert.That(hub.RequestsFor(file).Select(r => (r.Range, r.Mode)), Is.EqualTo(new[] { ((string?)null, Misbehavior.CorruptBody), (null, Misbehavior.None) }));
    }

    [Test]
    public async Task A_file_corrupted_every_time_is_an_error_naming_it_and_none_of_its_bytes_stay()
    {
        var hub = FewFilesHub();
        var error = Assert.ThrowsAsync<HubDownloadException>(() => DownloadWithLargestWeight(Misbehavior.CorruptBody, hub: hub))!;
        TestContext.Out.WriteLine(error.Message);
        var file = hub.Files.Keys.Single(path => hub.RequestsFor(path).Any(r => r.Mode == Misbehavior.CorruptBody));
        Assert.That(error.Message, Does.Contain($"{Repo}: {file} from {hub.Endpoint}{hub.ResolvePath(file)} does not match the hub's SHA-256 {FakeHub.Sha256(hub.Files[file])}")
            .And.Contain("downloaded twice"));
        Assert.That(hub.RequestsFor(file), Has.Length.EqualTo(2));
        var blob = BlobPath(file, hub.Files[file]);
        Assert.That((File.Exists(blob), File.Exists(blob + ".incomplete")), Is.EqualTo((false, false)));
        Assert.That(File.Exists(Path.Combine(RepoFolder, "refs", "main")), Is.False, "an incomplete snapshot gets no ref");
    }

    [Test]
    public async Task A_stalled_answer_times_out_and_is_retried()
    {
        var (hub, file, _) = await DownloadWithLargestWeight(Misbehavior.Stall, times: 1, configure: options => options.RequestTimeout = TimeSpan.FromMilliseconds(300));
        Assert.That(hub.RequestsFor(file).Select(r => r.Mode), Is.EqualTo(new[] { Misbehavior.Stall, Misbehavior.None }));
    }

    [Test]
    public void A_file_the_hub_lacks_is_an_error_at_once()
    {
        var hub = FewFilesHub();
        hub.Server.Misbehave(Misbehavior.Status404, onlyPath: hub.ResolvePath("unet_fp16/model.txt"));
        var error = Assert.ThrowsAsync<HubDownloadException>(() => new HubDownloader(Options(hub.Endpoint)).DownloadAsync(Repo))!;
        Assert.That(error.Message, Does.StartWith($"The hub refused {Repo}: unet_fp16/model.txt: HTTP 404"));
        Assert.That(hub.RequestsFor("unet_fp16/model.txt"), Has.Length.EqualTo(1), "a 404 is not retried");
    }

    [Test]
    public async Task Force_downloads_every_file_again()
    {
        var hub = FewFilesHub();
        var downloader = new HubDownloader(Options(hub.Endpoint));
        await downloader.DownloadAsync(Repo);
        var snapshot = await downloader.DownloadAsync(Repo, HubDownloadMode.Force);
        Assert.That(snapshot.FilesDownloaded, Is.EqualTo(hub.Files.DistinctBy(f => FakeHub.BlobName(f.Key, f.Value)).Count()));
        foreach (var path in hub.Files.Keys) Assert.That(hub.RequestsFor(path), Has.Length.EqualTo(2), path);
        AssertSnapshotHolds(snapshot, hub, hub.Files.Keys);
    }

    [Test]
    public void Never_with_an_empty_cache_is_an_error_naming_the_missing_path()
    {
        var hub = FewFilesHub();
        var error = Assert.ThrowsAsync<HubDownloadException>(() => new HubDownloader(Options(hub.Endpoint)).DownloadAsync(Repo, HubDownloadMode.Never))!;
        Assert.That(error.Message, Is.EqualTo($"{Repo} (revision main) is not in the hub cache and downloads are off: {Path.Combine(RepoFolder, "refs", "main")} is missing. " +
                                              "Download it (onnxstream sd --download auto) or use a local models folder (--models-path)."));
        Assert.That(hub.Server.Requests, Is.Empty);
    }

    [Test]
    public void An_unreachable_hub_with_nothing_cached_is_an_error_naming_the_endpoint_and_the_repository()
    {
        var endpoint = FakeHub.DeadEndpoint();
        var error = Assert.ThrowsAsync<HubDownloadException>(() => new HubDownloader(Options(endpoint)).DownloadAsync(Repo))!;
        TestContext.Out.WriteLine(error.Message);
        Assert.That(error.Message, Does.StartWith($"Cannot reach the hub at {endpoint} to get {Repo} (revision main): ")
            .And.EndWith($"The cache ({RepoFolder}) has no snapshot of it. Check the network connection (or HF_ENDPOINT), or use a local models folder (--models-path)."));
    }

    [Test]
    public async Task A_cached_snapshot_serves_offline()
    {
        string folder;
        using (var hub = FakeHub.ServingTinySd15(Repo, FakeHub.FewFiles))
            folder = (await new HubDownloader(Options(hub.Endpoint)).DownloadAsync(Repo)).Folder;
        var endpoint = FakeHub.DeadEndpoint();

        var auto = await new HubDownloader(Options(endpoint)).DownloadAsync(Repo);
        Assert.That((auto.Folder, auto.FilesDownloaded), Is.EqualTo((folder, 0)));
        Assert.That(auto.Notice, Does.StartWith($"Cannot reach the hub at {endpoint} to get {Repo}").And.EndWith($"using the cached snapshot {FakeHub.Commit}."));
        Assert.That((await new HubDownloader(Options(endpoint)).DownloadAsync(Repo, HubDownloadMode.Never)).Folder, Is.EqualTo(folder));
        var offline = Options(endpoint);
        offline.Offline = true;
        var snapshot = await new HubDownloader(offline).DownloadAsync(Repo);
        Assert.That((snapshot.Folder, snapshot.Notice), Is.EqualTo((folder, (string?)null)), "HF_HUB_OFFLINE does not even try the network");

        var failing = FewFilesHub();
        failing.Server.Misbehave(Misbehavior.Status500);
        var unavailable = await new HubDownloader(Options(failing.Endpoint)).DownloadAsync(Repo);
        Assert.That((unavailable.Folder, failing.Server.Requests.Count), Is.EqualTo((folder, 5)), "the listing tried MaxAttempts times, then the cache served");
        Assert.That(unavailable.Notice, Does.Contain("HTTP 500").And.EndWith($"using the cached snapshot {FakeHub.Commit}."));
    }

    [Test]
    public async Task The_token_goes_to_the_hub_as_a_bearer_header()
    {
        var hub = FewFilesHub();
        var options = Options(hub.Endpoint);
        options.Token = "hf_test_token";
        await new HubDownloader(options).DownloadAsync(Repo);
        Assert.That(hub.Server.Requests.Select(r => r.Authorization).Distinct(), Is.EqualTo(new[] { "Bearer hf_test_token" }));
    }

    [TestCase("../../escape.bin")]
    [TestCase("/etc/passwd")]
    [TestCase("unet/./model.txt")]
    public void A_listing_with_a_path_outside_the_snapshot_is_refused(string path)
    {
        var listing = $$"""{"sha":"{{FakeHub.Commit}}","siblings":[{"rfilename":"{{path}}","size":1,"blobId":"abc"}]}""";
        using var server = new LoopbackRangeServer(new Dictionary<string, byte[]> { [$"api/models/{Repo}/revision/main?blobs=true"] = Encoding.UTF8.GetBytes(listing) });
        var error = Assert.ThrowsAsync<HubDownloadException>(() => new HubDownloader(Options(server.BaseAddress.AbsoluteUri)).DownloadAsync(Repo))!;
        Assert.That(error.Message, Does.Contain($"has a file path '{path}' that is not a plain relative path"));
        Assert.That(server.Requests, Has.Count.EqualTo(1), "nothing downloaded");
    }

    [Test]
    public void The_options_follow_the_hub_clients_environment_variables()
    {
        static HubDownloadOptions With(params (string Name, string Value)[] variables) =>
            new(name => variables.FirstOrDefault(v => v.Name == name).Value);
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Multiple(() =>
        {
            var defaults = With();
            Assert.That((defaults.Endpoint, defaults.CacheDirectory, defaults.Token, defaults.Offline, defaults.MaxParallelDownloads),
                Is.EqualTo(("https://huggingface.co", Path.Combine(home, ".cache", "huggingface", "hub"), (string?)null, false, 4)));
            Assert.That(With(("HF_ENDPOINT", "http://mirror:8080/")).Endpoint, Is.EqualTo("http://mirror:8080/"));
            Assert.That(With(("XDG_CACHE_HOME", "/x")).CacheDirectory, Is.EqualTo(Path.Combine("/x", "huggingface", "hub")));
            Assert.That(With(("XDG_CACHE_HOME", "/x"), ("HF_HOME", "~/hf")).CacheDirectory, Is.EqualTo(Path.Combine(home, "hf", "hub")));
            Assert.That(With(("HF_HOME", "/h"), ("HF_HUB_CACHE", "/c")).CacheDirectory, Is.EqualTo("/c"));
            Assert.That(With(("HF_TOKEN", "hf_x")).Token, Is.EqualTo("hf_x"));
            Assert.That(new[] { "1", "true", "ON", "yes", "0", "false", "" }.Select(value => With(("HF_HUB_OFFLINE", value)).Offline),
                Is.EqualTo(new[] { true, true, true, true, false, false, false }));
        });
    }

    /// <summary>Collects reports as they are made (<see cref="Progress{T}"/> would post them to the thread pool, out of order).</summary>
    private sealed class SynchronousProgress<T>(List<T> reports) : IProgress<T>
    {
        public void Report(T value)
        {
            lock (reports) reports.Add(value);
        }
    }
}
