using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Runtime;
using OnnxStream.Tensors;
using OnnxStream.Weights;

namespace OnnxStream.Tests.Weights;

/// <summary>The memory-mapped provider against the disk provider, on a model folder and on ranges of one file.</summary>
internal sealed class MemoryMappedWeightsProviderTests
{
    private TinyWeightsModel _model = null!;

    [SetUp]
    public void WriteModel() => _model = new TinyWeightsModel();

    [TearDown]
    public void DeleteModel() => _model.Dispose();

    [Test]
    public void A_model_folder_gives_the_disk_providers_result_run_after_run_and_leaks_nothing()
    {
        var reference = _model.Reference();
        var y = TinyWeightsModel.Run(_model.FolderGraph(), new InferenceSessionOptions { WeightsProvider = WeightsProviderKind.MemoryMapped, Threads = 2 });
        Assert.That(y, Is.EqualTo(reference));
    }

    [Test]
    public void Ranges_of_one_file_give_the_disk_providers_result_from_one_mapping()
    {
        var reference = TinyWeightsModel.Run(_model.SingleFileGraph(), new InferenceSessionOptions { WeightsProvider = WeightsProviderKind.NoCache });
        Assert.That(reference, Is.EqualTo(_model.Reference()));
        MemoryMappedWeightsProvider? provider = null;
        var y = TinyWeightsModel.Run(_model.SingleFileGraph(), new InferenceSessionOptions
        {
            CustomWeightsProvider = () => provider = new MemoryMappedWeightsProvider(),
        });
        Assert.That(y, Is.EqualTo(reference));
        Assert.That(provider!.MappedFiles, Is.Zero, "disposed with the session");
    }

    [Test]
    public void Each_weight_is_the_exact_bytes_of_its_range()
    {
        var allocator = new NativeAllocator();
        using var provider = new MemoryMappedWeightsProvider();
        var weights = _model.SingleFileGraph().WeightsInUseOrder();
        provider.Initialize(weights, allocator);
        provider.BeginRun();
        foreach (var weight in weights)
        {
            var tensor = provider.Acquire(weight, CancellationToken.None);
            Assert.That(tensor.Bytes.ToArray(), Is.EqualTo(_model.WeightFiles[weight.Name]), weight.Name);
            provider.Release(weight, tensor);
        }
        provider.EndRun();
        Assert.That(provider.MappedFiles, Is.EqualTo(1));
        Assert.That(allocator.LiveBlocks, Is.Zero);
    }

    [Test]
    public void Inline_constants_and_empty_weights_need_no_file()
    {
        var allocator = new NativeAllocator();
        using var provider = new MemoryMappedWeightsProvider();
        var inline = new TensorDescriptor("c", [2], ElementType.Float32, Location: new WeightLocation("model.txt", 0, 8, BitConverter.GetBytes(1f).Concat(BitConverter.GetBytes(2f)).ToArray()));
        var empty = new TensorDescriptor("e", [0], ElementType.Float32, Location: new WeightLocation(Path.Combine(_model.Folder, "nowhere.bin"), 0, 0));
        provider.Initialize([inline, empty], allocator);
        using (var tensor = provider.Acquire(inline, CancellationToken.None))
            Assert.That(tensor.Span<float>().ToArray(), Is.EqualTo(new[] { 1f, 2f }));
        using (var tensor = provider.Acquire(empty, CancellationToken.None))
            Assert.That(tensor.ElementCount, Is.Zero);
        Assert.That(provider.MappedFiles, Is.Zero);
        Assert.That(allocator.LiveBlocks, Is.Zero);
    }

    [Test]
    public void A_file_truncated_after_it_was_mapped_fails_the_run_naming_it_instead_of_faulting()
    {
        using var session = new InferenceSession(_model.FolderGraph(), new InferenceSessionOptions { WeightsProvider = WeightsProviderKind.MemoryMapped });
        using var input = Tensor.From<float>(TinyWeightsModel.X, [2, 3], session.Allocator);
        session.Run(new Dictionary<string, Tensor> { ["x"] = input }).Dispose(); // every file is mapped now
        File.WriteAllBytes(Path.Combine(_model.Folder, "w1.bin"), new byte[8]);
        var error = Assert.Catch(() => session.Run(new Dictionary<string, Tensor> { ["x"] = input }))!;
        Assert.That(error.Message, Does.Contain("w1.bin").And.Contain("truncated"));
        input.Dispose();
        Assert.That(session.Allocator.LiveBlocks, Is.Zero);
    }

    [Test]
    public void A_missing_file_fails_with_file_not_found_and_leaks_nothing()
    {
        var allocator = new NativeAllocator();
        using var provider = new MemoryMappedWeightsProvider();
        var weight = new TensorDescriptor("w", [1], ElementType.Float32, Location: new WeightLocation(Path.Combine(_model.Folder, "gone.bin"), 0, 4));
        provider.Initialize([weight], allocator);
        Assert.Throws<FileNotFoundException>(() => provider.Acquire(weight, CancellationToken.None));
        Assert.That(allocator.LiveBlocks, Is.Zero);
    }

    [Test]
    public void Weights_are_views_of_one_mapping_per_file_unmapped_and_closed_on_dispose()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("reads /proc/self");
        var data = Path.Combine(_model.Folder, TinyWeightsModel.DataFile);
        var session = new InferenceSession(_model.SingleFileGraph(), new InferenceSessionOptions { WeightsProvider = WeightsProviderKind.MemoryMapped });
        using (var input = Tensor.From<float>(TinyWeightsModel.X, [2, 3], session.Allocator))
            session.Run(new Dictionary<string, Tensor> { ["x"] = input }).Dispose();
        Assert.That(OpenDescriptors(data), Is.EqualTo(1), "one open file per mapped file while the session lives");
        Assert.That(File.ReadAllText("/proc/self/maps"), Does.Contain(data), "the file stays mapped while the session lives");
        session.Dispose();
        Assert.That(OpenDescriptors(data), Is.Zero, "closed by Dispose");
        Assert.That(File.ReadAllText("/proc/self/maps"), Does.Not.Contain(data), "unmapped by Dispose");
    }

    [Test]
    public void A_weight_costs_no_tracked_memory_and_writes_do_not_reach_the_file()
    {
        var allocator = new NativeAllocator();
        using var provider = new MemoryMappedWeightsProvider();
        var weights = _model.SingleFileGraph().WeightsInUseOrder().Where(w => w.Location!.Inline is null && w.Location.Length > 0).ToList();
        Assert.That(weights, Is.Not.Empty);
        provider.Initialize(weights, allocator);
        var weight = weights[0];
        var tensor = provider.Acquire(weight, CancellationToken.None);
        Assert.That(allocator.CurrentBytes, Is.Zero, "a view, not a copy");
        tensor.Bytes.Fill(0xAB); // copy-on-write: private to this process
        provider.Release(weight, tensor);
        var file = File.ReadAllBytes(weight.Location!.Path).AsSpan((int)weight.Location.Offset, (int)weight.Location.Length).ToArray();
        Assert.That(file, Is.EqualTo(_model.WeightFiles[weight.Name]));
        Assert.That(allocator.LiveBlocks, Is.Zero);
    }

    /// <summary>
    /// A file truncated after its weight was handed out, while the operation reads it: the read would fault (SIGBUS, ending
    /// the test host); it reads zeros instead and the release names the file.
    /// </summary>
    [Test]
    public void A_file_truncated_under_a_weight_in_use_fails_its_release_naming_it_instead_of_faulting()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("Windows cannot truncate a mapped file");
        var allocator = new NativeAllocator();
        using var provider = new MemoryMappedWeightsProvider();
        var weights = _model.SingleFileGraph().WeightsInUseOrder();
        provider.Initialize(weights, allocator);
        var weight = weights.First(w => w.Name == "w1.bin");
        var tensor = provider.Acquire(weight, CancellationToken.None);
        using (var file = new FileStream(weight.Location!.Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
            file.SetLength(0);
        Assert.That(tensor.Span<float>().ToArray(), Is.All.Zero, "zeros past the file's end, not a fault");
        var error = Assert.Throws<IOException>(() => provider.Release(weight, tensor))!;
        Assert.That(error.Message, Does.Contain(weight.Location.Path).And.Contain("shrank"));
        Assert.That(allocator.LiveBlocks, Is.Zero);

        // The file whole again: the next acquire maps it anew.
        File.WriteAllBytes(weight.Location.Path, _model.Data);
        var again = provider.Acquire(weight, CancellationToken.None);
        Assert.That(again.Bytes.ToArray(), Is.EqualTo(_model.WeightFiles["w1.bin"]));
        provider.Release(weight, again);
    }

    /// <summary>The same in a session: the run fails with an error naming the file, leaks nothing, and a later run works again.</summary>
    [Test]
    public void A_file_truncated_while_an_operation_reads_it_fails_the_run_naming_it()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("Windows cannot truncate a mapped file");
        var reference = _model.Reference();
        var path = Path.Combine(_model.Folder, "w1.bin");
        var truncate = true;
        using var session = new InferenceSession(_model.FolderGraph(), new InferenceSessionOptions
        {
            Threads = 2,
            CustomWeightsProvider = () => new TruncatingProvider(new MemoryMappedWeightsProvider(), path, () => truncate),
        });
        using var input = Tensor.From<float>(TinyWeightsModel.X, [2, 3], session.Allocator);
        var error = Assert.Throws<IOException>(() => session.Run(new Dictionary<string, Tensor> { ["x"] = input }))!;
        Assert.That(error.Message, Does.Contain(path));
        Assert.That(session.Allocator.LiveBlocks, Is.EqualTo(1), "only the input is left");

        truncate = false;
        File.WriteAllBytes(path, _model.WeightFiles["w1.bin"]);
        using var result = session.Run(new Dictionary<string, Tensor> { ["x"] = input });
        Assert.That(result.Outputs["y"].Span<float>().ToArray(), Is.EqualTo(reference));
    }

    /// <summary>Truncates one weight file to 0 bytes right after handing out its weight (while <paramref name="enabled"/>).</summary>
    private sealed class TruncatingProvider(IWeightsProvider inner, string path, Func<bool> enabled) : IWeightsProvider
    {
        public void Initialize(IReadOnlyList<TensorDescriptor> requestOrder, NativeAllocator allocator) => inner.Initialize(requestOrder, allocator);

        public Tensor Acquire(TensorDescriptor weight, CancellationToken cancellationToken)
        {
            var tensor = inner.Acquire(weight, cancellationToken);
            if (enabled() && weight.Location?.Path == path)
            {
                using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
                file.SetLength(0);
            }
            return tensor;
        }

        public void Release(TensorDescriptor weight, Tensor tensor) => inner.Release(weight, tensor);

        public void BeginRun() => inner.BeginRun();

        public void EndRun() => inner.EndRun();

        public void Dispose() => inner.Dispose();
    }

    private static int OpenDescriptors(string path) =>
        new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos().Count(fd =>
        {
            try
            {
                return fd.LinkTarget == path;
            }
            catch (IOException)
            {
                return false;
            }
        });
}
