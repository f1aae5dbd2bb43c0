using OnnxStream.IO;

namespace OnnxStream.Tests.IO;

/// <summary><see cref="AtomicFile"/>: the destination appears whole or not at all, and nothing else is left behind.</summary>
internal sealed class AtomicFileTests
{
    private string _folder = null!;

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-atomic-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void A_committed_write_replaces_the_destination_and_leaves_nothing_else()
    {
        var path = Path.Combine(_folder, "out.bin");
        File.WriteAllBytes(path, [9, 9, 9, 9]);
        AtomicFile.WriteAllBytes(path, [1, 2, 3]);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(Directory.GetFiles(_folder), Is.EqualTo(new[] { path }));
    }

    [Test]
    public void A_failed_write_leaves_the_destination_as_it_was_and_no_temporary_file()
    {
        var existing = Path.Combine(_folder, "existing.bin");
        File.WriteAllBytes(existing, [7]);
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(existing, stream =>
        {
            stream.Write(new byte[100_000]);
            throw new InvalidOperationException("interrupted");
        }));
        var fresh = Path.Combine(_folder, "fresh.bin");
        using (var file = AtomicFile.Create(fresh))
        {
            file.Stream.Write([1, 2]);
            Assert.That(File.Exists(file.TemporaryPath), Is.True);
            Assert.That(File.Exists(fresh), Is.False, "not there before Commit");
        }
        Assert.That(File.ReadAllBytes(existing), Is.EqualTo(new byte[] { 7 }));
        Assert.That(Directory.GetFiles(_folder), Is.EqualTo(new[] { existing }));
    }

    [Test]
    public void A_directory_or_a_missing_folder_is_refused_before_anything_is_written()
    {
        Assert.That(() => AtomicFile.EnsureWritable(_folder), Throws.InstanceOf<IOException>().With.Message.Contains("is a directory"));
        var missing = Path.Combine(_folder, "no", "out.bin");
        Assert.That(() => AtomicFile.Create(missing), Throws.InstanceOf<DirectoryNotFoundException>().With.Message.Contains(Path.Combine(_folder, "no")));
        Assert.That(Directory.GetFileSystemEntries(_folder), Is.Empty);
    }
}
