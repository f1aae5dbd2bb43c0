using System.Diagnostics;
using System.Text;
using OnnxStream.StableDiffusion.Download;
using OnnxStream.Tests.Weights;

namespace OnnxStream.Tests.StableDiffusion.Download;

/// <summary>
/// <see cref="HubDownloader"/> against a hostile hub on loopback (small in-memory repositories, no fixtures): every answer is
/// bounded in bytes, files, time and disk, and each bound is a clear error well within the test's time.
/// </summary>
internal sealed class HubDownloadBoundsTests
{
    private const string Repo = "org/hostile";
    private const string ListingPath = $"/api/models/{Repo}/revision/main?blobs=true";
    private string _cache = null!;

    [SetUp]
    public void CreateCache() => _cache = Directory.CreateTempSubdirectory("hub-bounds-").FullName;

    [TearDown]
    public void DeleteCache() => Directory.Delete(_cache, true);

    private string RepoFolder => Path.Combine(_cache, "models--org--hostile");

    /// <summary>Options that ignore this machine's HF_* variables: the hub at <paramref name="endpoint"/>, a fresh cache, quick retries.</summary>
    private HubDownloadOptions Options(string endpoint) => new(_ => null)
    {
        Endpoint = endpoint,
        CacheDirectory = _cache,
        RetryDelay = TimeSpan.FromMilliseconds(10),
        RequestTimeout = TimeSpan.FromSeconds(5),
    };

    /// <summary>Downloads <see cref="Repo"/>, expecting an error within <paramref name="seconds"/>; returns the error.</summary>
    private static HubDownloadException Fails(HubDownloadOptions options, double seconds = 5)
    {
        var clock = Stopwatch.StartNew();
        var error = Assert.ThrowsAsync<HubDownloadException>(() => new HubDownloader(options).DownloadAsync(Repo))!;
        Assert.That(clock.Elapsed.TotalSeconds, Is.LessThan(seconds), "the bound stops it quickly");
        return error;
    }

    /// <summary>A hub whose listing is <paramref name="listing"/> (and no files).</summary>
    private static LoopbackRangeServer ListingServer(string listing) =>
        new(new Dictionary<string, byte[]> { [ListingPath[1..]] = Encoding.UTF8.GetBytes(listing) });

    private static FakeHub OneFileHub() => new(Repo, new Dictionary<string, byte[]> { ["w.bin"] = Enumerable.Range(0, 200).Select(i => (byte)i).ToArray() });

    [Test]
    public void An_endless_listing_is_cut_off_at_the_listing_size_limit()
    {
        using var hub = OneFileHub();
        hub.Server.Misbehave(Misbehavior.Endless, onlyPath: ListingPath);
        var options = Options(hub.Endpoint);
        options.MaxListingBytes = 1 << 20;

        var error = Fails(options);

        Assert.That(error.Message, Does.Contain($"The listing of {Repo}").And.Contain("more than the 1048576 allowed (HubDownloadOptions.MaxListingBytes)"));
        Assert.That(hub.Server.Requests, Has.Count.EqualTo(1), "not retried");
    }

    [Test]
    public void A_listing_longer_than_the_limit_is_refused_by_its_content_length()
    {
        using var hub = OneFileHub();
        var options = Options(hub.Endpoint);
        options.MaxListingBytes = 100;

        Assert.That(Fails(options).Message, Does.Contain("more than the 100 allowed (HubDownloadOptions.MaxListingBytes)"));
    }

    [Test]
    public void A_listing_that_trickles_past_the_listing_time_limit_is_an_error()
    {
        using var hub = OneFileHub();
        hub.Server.Misbehave(Misbehavior.Trickle, onlyPath: ListingPath);
        var options = Options(hub.Endpoint);
        options.ListingTimeout = TimeSpan.FromMilliseconds(500);

        var error = Fails(options);

        Assert.That(error.Message, Does.Contain("took longer than 0.5 s (HubDownloadOptions.ListingTimeout)"));
    }

    [Test]
    public void A_download_past_the_whole_download_time_limit_is_an_error()
    {
        using var hub = OneFileHub();
        hub.Server.Misbehave(Misbehavior.Trickle, onlyPath: hub.ResolvePath("w.bin"));
        var options = Options(hub.Endpoint);
        options.DownloadTimeout = TimeSpan.FromSeconds(1);

        var error = Fails(options);

        Assert.That(error.Message, Does.Contain($"{Repo} (revision main)").And.Contain("took longer than 1 s (HubDownloadOptions.DownloadTimeout)"));
    }

    [Test]
    public void A_listing_that_claims_more_than_the_free_disk_space_is_refused_before_downloading()
    {
        var sha = new string('a', 64);
        using var server = ListingServer($$$"""{"sha":"{{{FakeHub.Commit}}}","siblings":[{"rfilename":"huge.bin","size":1000000000000000,"blobId":"abc","lfs":{"sha256":"{{{sha}}}","size":1000000000000000}}]}""");

        var error = Fails(Options(server.BaseAddress.AbsoluteUri));

        Assert.That(error.Message, Does.Contain($"{Repo}: the 1 file(s) to download take 1000000000000000 bytes").And.Contain("bytes free").And.Contain(RepoFolder));
        Assert.That(server.Requests, Has.Count.EqualTo(1), "nothing downloaded");
        Assert.That(Directory.EnumerateFiles(_cache, "*", SearchOption.AllDirectories), Is.Empty, "nothing written");
    }

    [Test]
    public void A_listing_of_more_files_than_the_limit_is_refused_before_anything_is_linked()
    {
        var siblings = string.Join(',', Enumerable.Range(0, 50).Select(i => $$"""{"rfilename":"f{{i}}.txt","size":1,"blobId":"abc"}"""));
        using var server = ListingServer($$"""{"sha":"{{FakeHub.Commit}}","siblings":[{{siblings}}]}""");
        var options = Options(server.BaseAddress.AbsoluteUri);
        options.MaxFiles = 10;

        var error = Fails(options);

        Assert.That(error.Message, Does.Contain("lists 50 files, more than the 10 allowed (HubDownloadOptions.MaxFiles)"));
        Assert.That(Directory.Exists(Path.Combine(RepoFolder, "snapshots")), Is.False, "no snapshot entries");
    }

    [Test]
    public void A_file_that_sends_more_bytes_than_listed_is_cut_off()
    {
        using var hub = OneFileHub();
        hub.Server.Misbehave(Misbehavior.Endless, onlyPath: hub.ResolvePath("w.bin"));

        var error = Fails(Options(hub.Endpoint));

        Assert.That(error.Message, Does.Contain("sends more bytes").And.Contain("w.bin at 200 bytes"));
        Assert.That(Directory.EnumerateFiles(Path.Combine(RepoFolder, "blobs")).Select(f => new FileInfo(f).Length), Has.All.LessThanOrEqualTo(200));
    }

    [Test]
    public void The_bounds_have_defaults_and_out_of_range_values_are_refused()
    {
        var defaults = new HubDownloadOptions(_ => null);
        Assert.That((defaults.MaxListingBytes, defaults.MaxFiles, defaults.ListingTimeout, defaults.DownloadTimeout, defaults.CheckFreeSpace),
            Is.EqualTo((16L << 20, 20_000, TimeSpan.FromMinutes(2), TimeSpan.FromHours(24), true)));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new HubDownloader(new HubDownloadOptions(_ => null) { MaxFiles = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new HubDownloader(new HubDownloadOptions(_ => null) { MaxListingBytes = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new HubDownloader(new HubDownloadOptions(_ => null) { DownloadTimeout = TimeSpan.Zero }));
        Assert.DoesNotThrow(() => _ = new HubDownloader(new HubDownloadOptions(_ => null) { DownloadTimeout = Timeout.InfiniteTimeSpan }));
    }
}
