using System.Diagnostics;
using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Weights;

namespace OnnxStream.Tests.Weights;

/// <summary>The HTTP range provider against a loopback server, well-behaved and not.</summary>
internal sealed class HttpRangeWeightsProviderTests
{
    private TinyWeightsModel _model = null!;
    private LoopbackRangeServer _server = null!;
    private HttpClient _client = null!;
    private float[] _reference = null!;

    [SetUp]
    public void Start()
    {
        _model = new TinyWeightsModel();
        _reference = _model.Reference();
        _server = new LoopbackRangeServer(new Dictionary<string, byte[]>(_model.WeightFiles) { [TinyWeightsModel.DataFile] = _model.Data });
        _client = new HttpClient(new SocketsHttpHandler { UseProxy = false });
    }

    [TearDown]
    public void Stop()
    {
        _client.Dispose();
        _server.Dispose();
        _model.Dispose();
    }

    private HttpRangeWeightsProviderOptions Folder(int prefetch = 0) => new()
    {
        BaseAddress = _server.BaseAddress,
        HttpClient = _client,
        PrefetchCount = prefetch,
        RequestTimeout = TimeSpan.FromSeconds(2),
        RetryDelay = TimeSpan.FromMilliseconds(10),
    };

    private HttpRangeWeightsProviderOptions SingleFile(int prefetch = 0)
    {
        var options = Folder(prefetch);
        options.BaseAddress = null;
        options.FileAddress = new Uri(_server.BaseAddress, TinyWeightsModel.DataFile);
        return options;
    }

    private static InferenceSessionOptions Using(HttpRangeWeightsProviderOptions options) =>
        new() { CustomWeightsProvider = () => new HttpRangeWeightsProvider(options), Threads = 2 };

    private string[] Ranges(string path) => _server.Requests.Where(r => r.Path == path).Select(r => r.Range ?? "").ToArray();

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(3)]
    public void A_served_model_folder_gives_the_disk_providers_result_run_after_run_and_leaks_nothing(int prefetch)
    {
        var graph = _model.FolderGraph();
        foreach (var file in _model.WeightFiles.Keys) // the weights can only come from the server now
            File.WriteAllBytes(Path.Combine(_model.Folder, file), new byte[_model.WeightFiles[file].Length]);
        Assert.That(TinyWeightsModel.Run(graph, Using(Folder(prefetch))), Is.EqualTo(_reference));
        Assert.That(Ranges("/w0.bin"), Is.All.EqualTo("bytes=0-11"));
        Assert.That(Ranges("/w1.bin"), Is.All.EqualTo("bytes=0-23"));
        if (prefetch == 0) Assert.That(_server.Requests, Has.Count.EqualTo(3 * 4), "one request per weight use");
    }

    [TestCase(0)]
    [TestCase(2)]
    public void Ranges_of_one_served_file_give_the_disk_providers_result(int prefetch)
    {
        Assert.That(TinyWeightsModel.Run(_model.SingleFileGraph(), Using(SingleFile(prefetch))), Is.EqualTo(_reference));
        Assert.That(Ranges("/" + TinyWeightsModel.DataFile).Distinct(), Is.EquivalentTo(new[] { "bytes=16-27", "bytes=35-58", "bytes=59-62" }));
    }

    [Test]
    public void A_server_that_ignores_range_is_read_by_skipping_to_the_weight_or_refused_when_asked()
    {
        _server.Misbehave(Misbehavior.IgnoreRange);
        Assert.That(TinyWeightsModel.Run(_model.SingleFileGraph(), Using(SingleFile(prefetch: 2))), Is.EqualTo(_reference));

        var options = SingleFile();
        options.AcceptWholeFileResponses = false;
        var error = RunFails(_model.SingleFileGraph(), options);
        Assert.That(error.Message, Does.Contain("ignored the Range header").And.Contain("weight 'w0.bin'")
            .And.Contain(options.FileAddress!.ToString()).And.Contain("bytes 16-27"));
    }

    [Test]
    public void A_dropped_connection_is_retried_from_the_bytes_already_received()
    {
        _server.Misbehave(Misbehavior.DropMidBody, times: 2, onlyPath: "/w1.bin");
        Assert.That(TinyWeightsModel.Run(_model.FolderGraph(), Using(Folder()), runs: 1), Is.EqualTo(_reference));
        // 24 bytes: 12 arrive, then 6 of the remaining 12, then the last 6.
        Assert.That(Ranges("/w1.bin"), Is.EqualTo(new[] { "bytes=0-23", "bytes=12-23", "bytes=18-23", "bytes=0-23" }));
    }

    [Test]
    public void A_short_body_is_retried_once_and_fails_naming_the_weight_when_it_persists()
    {
        _server.Misbehave(Misbehavior.ShortContentLength, times: 1);
        Assert.That(TinyWeightsModel.Run(_model.FolderGraph(), Using(Folder()), runs: 1), Is.EqualTo(_reference));

        _server.Misbehave(Misbehavior.ShortContentLength, onlyPath: "/w2.bin");
        var error = RunFails(_model.FolderGraph(), Folder(prefetch: 2));
        Assert.That(error.Message, Does.Contain("truncated").And.Contain("weight 'w2.bin'")
            .And.Contain(new Uri(_server.BaseAddress, "w2.bin").ToString()).And.Contain("bytes 0-3").And.Contain("after 3 attempt(s)"));
    }

    [Test]
    public void A_permanent_server_error_fails_after_the_attempts_and_leaks_nothing()
    {
        _server.Misbehave(Misbehavior.Status500, onlyPath: "/w1.bin");
        var error = RunFails(_model.FolderGraph(), Folder());
        Assert.That(error.Message, Does.Contain("HTTP 500").And.Contain("after 3 attempt(s)").And.Contain("weight 'w1.bin'").And.Contain("bytes 0-23"));
        Assert.That(Ranges("/w1.bin"), Has.Length.EqualTo(3));
    }

    [TestCase(Misbehavior.Status404, "HTTP 404")]
    [TestCase(Misbehavior.Status416, "HTTP 416")]
    public void A_missing_file_or_unsatisfiable_range_fails_at_once(Misbehavior mode, string expected)
    {
        _server.Misbehave(mode, onlyPath: "/w0.bin");
        var error = RunFails(_model.FolderGraph(), Folder());
        Assert.That(error.Message, Does.Contain(expected).And.Contain("weight 'w0.bin'").And.Contain("bytes 0-11")
            .And.Not.Contain("attempt"));
        Assert.That(Ranges("/w0.bin"), Has.Length.EqualTo(1), "not retried");
    }

    [Test]
    public void A_file_shorter_on_the_server_than_the_model_says_fails_at_once()
    {
        var graph = _model.SingleFileGraph();
        var node = graph.Nodes[2];
        var w2 = node.Inputs[1]!;
        var beyond = w2 with { Location = w2.Location! with { Offset = _model.Data.Length - 2 } }; // its last 2 bytes are past the end
        graph = graph with { Nodes = graph.Nodes.Select(n => n == node ? n with { Inputs = [n.Inputs[0], beyond] } : n).ToList() };
        var error = RunFails(graph, SingleFile());
        Assert.That(error.Message, Does.Contain($"the file has only {_model.Data.Length} bytes").And.Contain("weight 'w2.bin'")
            .And.Contain($"bytes {_model.Data.Length - 2}-{_model.Data.Length + 1}"));
        Assert.That(Ranges("/" + TinyWeightsModel.DataFile).Count(r => r.StartsWith($"bytes={_model.Data.Length - 2}")), Is.EqualTo(1), "not retried");
    }

    [Test]
    public void A_silent_server_times_out_within_the_attempts()
    {
        _server.Misbehave(Misbehavior.Stall);
        var options = Folder();
        options.RequestTimeout = TimeSpan.FromMilliseconds(200);
        options.MaxAttempts = 2;
        var clock = Stopwatch.StartNew();
        var error = RunFails(_model.FolderGraph(), options);
        Assert.That(error.Message, Does.Contain("timed out").And.Contain("after 2 attempt(s)").And.Contain("weight 'w0.bin'"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
    }

    [Test]
    public void Cancelling_a_run_stops_a_stalled_fetch_promptly_and_frees_what_was_fetched_ahead()
    {
        _server.Misbehave(Misbehavior.Stall, onlyPath: "/w1.bin");
        var options = Folder(prefetch: 3);
        options.RequestTimeout = TimeSpan.FromSeconds(30);
        using var session = new InferenceSession(_model.FolderGraph(), Using(options));
        using var input = Tensor.From<float>(TinyWeightsModel.X, [2, 3], session.Allocator);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var clock = Stopwatch.StartNew();
        Assert.That(() => session.Run(new Dictionary<string, Tensor> { ["x"] = input }, cancellationToken: cancel.Token),
            Throws.InstanceOf<OperationCanceledException>());
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        input.Dispose();
        Assert.That(session.Allocator.LiveBlocks, Is.Zero);
    }

    [Test]
    public void The_provider_fetches_exact_bytes_and_leaves_an_injected_client_usable()
    {
        var allocator = new NativeAllocator();
        var weights = _model.SingleFileGraph().WeightsInUseOrder();
        using (var provider = new HttpRangeWeightsProvider(SingleFile(prefetch: 1)))
        {
            provider.Initialize(weights, allocator);
            provider.BeginRun();
            foreach (var weight in weights)
            {
                var tensor = provider.Acquire(weight, CancellationToken.None);
                Assert.That(tensor.Bytes.ToArray(), Is.EqualTo(_model.WeightFiles[weight.Name]), weight.Name);
                provider.Release(weight, tensor);
            }
            provider.EndRun();
            Assert.That(allocator.LiveBlocks, Is.Zero);
        }
        Assert.That(_client.GetByteArrayAsync(new Uri(_server.BaseAddress, "w2.bin")).GetAwaiter().GetResult(), Is.EqualTo(_model.WeightFiles["w2.bin"]));
    }

    [Test]
    public void Asked_out_of_order_it_still_gives_the_right_weights()
    {
        var allocator = new NativeAllocator();
        var weights = _model.FolderGraph().WeightsInUseOrder();
        using var provider = new HttpRangeWeightsProvider(Folder(prefetch: 2));
        provider.Initialize(weights, allocator);
        provider.BeginRun();
        foreach (var weight in weights.Reverse())
        {
            var tensor = provider.Acquire(weight, CancellationToken.None);
            Assert.That(tensor.Bytes.ToArray(), Is.EqualTo(_model.WeightFiles[weight.Name]), weight.Name);
            provider.Release(weight, tensor);
        }
        provider.EndRun();
        Assert.That(allocator.LiveBlocks, Is.Zero);
    }

    [Test]
    public void Options_need_exactly_one_absolute_http_address()
    {
        Assert.Throws<ArgumentException>(() => new HttpRangeWeightsProvider(new HttpRangeWeightsProviderOptions()));
        Assert.Throws<ArgumentException>(() => new HttpRangeWeightsProvider(new HttpRangeWeightsProviderOptions
        {
            BaseAddress = _server.BaseAddress,
            FileAddress = _server.BaseAddress,
        }));
        Assert.Throws<ArgumentException>(() => new HttpRangeWeightsProvider(new HttpRangeWeightsProviderOptions { BaseAddress = new Uri("file:///tmp/") }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HttpRangeWeightsProvider(new HttpRangeWeightsProviderOptions
        {
            BaseAddress = _server.BaseAddress,
            MaxAttempts = 0,
        }));
        using var provider = new HttpRangeWeightsProvider(new HttpRangeWeightsProviderOptions { BaseAddress = new Uri("http://127.0.0.1:1/models/sd") });
        Assert.That(provider.AddressOf(new WeightLocation("/local/folder/unet_w 1.bin", 0, 4)).AbsoluteUri, Is.EqualTo("http://127.0.0.1:1/models/sd/unet_w%201.bin"));
    }

    /// <summary>Runs once, expecting an <see cref="IOException"/>, and checks the session leaked nothing.</summary>
    private static IOException RunFails(ModelGraph graph, HttpRangeWeightsProviderOptions options)
    {
        using var session = new InferenceSession(graph, Using(options));
        using var input = Tensor.From<float>(TinyWeightsModel.X, [2, 3], session.Allocator);
        var error = Assert.Catch<IOException>(() => session.Run(new Dictionary<string, Tensor> { ["x"] = input }))!;
        input.Dispose();
        Assert.That(session.Allocator.LiveBlocks, Is.Zero);
        return error;
    }
}
