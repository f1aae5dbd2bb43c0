namespace OnnxStream.StableDiffusion.Download;

/// <summary>
/// One model repository's folder in the hub cache, laid out as huggingface_hub lays it out so either reuses what the
/// other downloaded: <c>models--ORG--NAME/blobs/BLOB</c> (each file's bytes, named by its ETag: the SHA-256 of an LFS
/// file, the Git blob id of another; <c>BLOB.incomplete</c> while it downloads), <c>snapshots/COMMIT/PATH</c> (relative
/// links to the blobs; copies where links cannot be made) and <c>refs/REVISION</c> (the commit the revision resolved to).
/// </summary>
internal sealed class HubCache(string cacheDirectory, string repoId)
{
    public string RepoFolder { get; } = Path.Combine(Path.GetFullPath(cacheDirectory), "models--" + repoId.Replace("/", "--", StringComparison.Ordinal));

    public string BlobPath(HubFile file) => Path.Combine(RepoFolder, "blobs", file.BlobName);

    public string IncompletePath(HubFile file) => BlobPath(file) + ".incomplete";

    public string SnapshotFolder(string commit) => Path.Combine(RepoFolder, "snapshots", commit);

    public string SnapshotPath(string commit, HubFile file) => Path.Combine(SnapshotFolder(commit), file.Path.Replace('/', Path.DirectorySeparatorChar));

    public string RefPath(string revision) => Path.Combine(RepoFolder, "refs", revision.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>The commit <paramref name="revision"/> last resolved to (a commit hash stands for itself when its snapshot exists), or null.</summary>
    public string? ResolveRevision(string revision)
    {
        var reference = RefPath(revision);
        if (File.Exists(reference)) return File.ReadAllText(reference).Trim();
        return Directory.Exists(SnapshotFolder(revision)) ? revision : null;
    }

    public void WriteRef(string revision, string commit)
    {
        if (revision == commit) return;
        var reference = RefPath(revision);
        Directory.CreateDirectory(Path.GetDirectoryName(reference)!);
        File.WriteAllText(reference, commit);
    }

    /// <summary>Whether the blob of <paramref name="file"/> is in the cache at its size (its hash was checked when it arrived).</summary>
    public bool HasBlob(HubFile file)
    {
        var blob = new FileInfo(BlobPath(file));
        return blob.Exists && blob.Length == file.Size;
    }

    /// <summary>Makes the snapshot's entry for <paramref name="file"/> a relative link to its blob (a copy where links fail).</summary>
    public void Link(string commit, HubFile file)
    {
        var entry = SnapshotPath(commit, file);
        var blob = BlobPath(file);
        Directory.CreateDirectory(Path.GetDirectoryName(entry)!);
        if (File.Exists(entry) || new FileInfo(entry).LinkTarget is not null) File.Delete(entry);
        try
        {
            File.CreateSymbolicLink(entry, Path.GetRelativePath(Path.GetDirectoryName(entry)!, blob));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            // Windows without developer mode cannot make links: the snapshot holds a copy, as huggingface_hub does there.
            File.Copy(blob, entry, overwrite: true);
        }
    }
}
