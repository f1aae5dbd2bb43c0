namespace OnnxStream.IO;

/// <summary>
/// A file written under a temporary name in its destination's folder and renamed over the destination only
/// when <see cref="Commit"/> is called: a failed, cancelled or interrupted write leaves the destination as it
/// was and, once disposed, no partial file behind.
/// </summary>
/// <example><code>
/// using (var file = AtomicFile.Create("out.npy"))
/// {
///     file.Stream.Write(bytes);
///     file.Commit();
/// }
/// </code></example>
public sealed class AtomicFile : IDisposable
{
    private bool _committed;

    private AtomicFile(string path, string temporaryPath, FileStream stream)
    {
        Path = path;
        TemporaryPath = temporaryPath;
        Stream = stream;
    }

    /// <summary>The destination (full path).</summary>
    public string Path { get; }

    /// <summary>Where the bytes go until <see cref="Commit"/>: a hidden name beside <see cref="Path"/>.</summary>
    public string TemporaryPath { get; }

    /// <summary>The stream to write to (the temporary file).</summary>
    public FileStream Stream { get; }

    /// <summary>Opens a temporary file beside <paramref name="path"/> for writing, after <see cref="EnsureWritable"/>'s checks.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="bufferSize">The stream's buffer size.</param>
    /// <exception cref="IOException">The path is a directory or its folder does not exist.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder is not writable.</exception>
    public static AtomicFile Create(string path, int bufferSize = 1 << 16)
    {
        var full = EnsureWritable(path);
        var temporary = TemporaryPathFor(full);
        return new AtomicFile(full, temporary, new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize));
    }

    /// <summary>Writes <paramref name="path"/> atomically with <paramref name="write"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        using var file = Create(path);
        write(file.Stream);
        file.Commit();
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        using var file = Create(path);
        file.Stream.Write(bytes);
        file.Commit();
    }

    /// <summary>Writes <paramref name="text"/> (UTF-8, no byte order mark) to <paramref name="path"/> as <see cref="WriteAllBytes"/> does.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, new System.Text.UTF8Encoding(false).GetBytes(text));

    /// <summary>
    /// Checks, before any work, that <paramref name="path"/> can be written: it is not a directory, its folder exists,
    /// and a file can be created there (one is created and deleted). Returns the full path.
    /// </summary>
    /// <exception cref="IOException">The path is a directory or its folder does not exist.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder is not writable.</exception>
    public static string EnsureWritable(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new IOException($"{path} is a directory, not a file to write.");
        var folder = System.IO.Path.GetDirectoryName(full)!;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{path}: the folder {folder} does not exist.");
        try
        {
            using var probe = new FileStream(TemporaryPathFor(full), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new UnauthorizedAccessException($"{path}: the folder {folder} is not writable.", e);
        }
        return full;
    }

    /// <summary>A new hidden name beside <paramref name="path"/> (<c>.NAME.RANDOM.tmp</c>).</summary>
    public static string TemporaryPathFor(string path) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!,
            $".{System.IO.Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");

    /// <summary>Flushes the bytes to disk, closes the stream and renames the temporary file over <see cref="Path"/>.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        Stream.Flush(flushToDisk: true);
        Stream.Dispose();
        File.Move(TemporaryPath, Path, overwrite: true);
        _committed = true;
    }

    /// <summary>Closes the stream and, unless committed, deletes the temporary file.</summary>
    public void Dispose()
    {
        Stream.Dispose();
        if (!_committed) File.Delete(TemporaryPath);
    }
}
