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
