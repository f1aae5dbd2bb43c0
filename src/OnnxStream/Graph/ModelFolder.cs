namespace OnnxStream.Graph;

/// <summary>
/// The folder a model was loaded from, and the one check every file the model names goes through: the file, its links
/// followed, must be inside the folder (whose own path is resolved first, so a linked model folder is fine). In a Hugging
/// Face cache snapshot (<c>models--ORG--NAME/snapshots/COMMIT/...</c>), whose files are links to the repository's
/// <c>blobs/</c>, that blobs folder counts as inside too.
/// </summary>
internal sealed class ModelFolder
{
    private const int MaxLinks = 40;
    private static readonly StringComparison PathComparison = OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
    private readonly string[] _roots;
    private readonly bool _allowOutside;

    /// <param name="folder">The folder of the model.txt or .onnx.</param>
    /// <param name="allowOutside">Skip the check (<see cref="ModelLoadOptions.AllowWeightsOutsideModelFolder"/>).</param>
    public ModelFolder(string folder, bool allowOutside)
    {
        FullPath = Path.GetFullPath(folder);
        _allowOutside = allowOutside;
        var real = RealPath(FullPath);
        _roots = HubBlobs(real) is { } blobs ? [real, blobs] : [real];
    }

    /// <summary>The folder as given, made absolute.</summary>
    public string FullPath { get; }

    /// <summary>The absolute path of <paramref name="name"/> (relative to the folder, or absolute).</summary>
    /// <param name="name">The file name the model gives.</param>
    /// <param name="what">What names it (the node or tensor, and where), for the error.</param>
    /// <exception cref="ModelFormatException">The file is outside the folder, through <c>..</c>, an absolute path or a link.</exception>
    public string Resolve(string name, string what)
    {
        var path = Path.GetFullPath(Path.Combine(FullPath, name));
        if (_allowOutside) return path;
        string real;
        try
        {
            real = RealPath(path);
        }
        catch (IOException e)
        {
            throw new ModelFormatException($"{what}: file '{name}' ({path}) cannot be resolved: {e.Message}", e);
        }
        if (!_roots.Any(root => real.StartsWith(Path.EndsInDirectorySeparator(root) ? root : root + Path.DirectorySeparatorChar, PathComparison)))
            throw new ModelFormatException($"{what}: file '{name}' is {real}, outside the model folder {_roots[0]}. A model reads only files in its " +
                                           "folder; allow others only for a model you trust (ModelLoadOptions.AllowWeightsOutsideModelFolder, --allow-outside-weights).");
        return path;
    }

    /// <summary>The model folder of <paramref name="modelFile"/> (a model.txt or .onnx).</summary>
    public static ModelFolder Of(string modelFile, bool allowOutside) => new(Path.GetDirectoryName(Path.GetFullPath(modelFile))!, allowOutside);

    /// <summary>
    /// <paramref name="path"/> (absolute) with every link followed, as the system resolves it: each component in turn, a
    /// <c>..</c> after a link going up from the link's target.
    /// </summary>
    internal static string RealPath(string path)
    {
        var current = Path.GetPathRoot(path)!;
        var pending = new Stack<string>(Components(path[current.Length..]).Reverse());
        for (var links = 0; pending.Count > 0;)
        {
            var part = pending.Pop();
            if (part == ".") continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? current;
                continue;
            }
            var next = Path.Join(current, part);
            if (new FileInfo(next).LinkTarget is not { } target)
            {
                current = next;
                continue;
            }
            if (++links > MaxLinks) throw new IOException($"more than {MaxLinks} links (a loop?) in {path}");
            if (Path.IsPathRooted(target))
            {
                current = Path.GetPathRoot(target)!;
                target = target[current.Length..];
            }
            foreach (var component in Components(target).Reverse()) pending.Push(component);
        }
        return current;
    }

    private static string[] Components(string path) =>
        path.Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The repository's <c>blobs</c> folder when <paramref name="folder"/> is in a hub cache snapshot, else null.</summary>
    private static string? HubBlobs(string folder)
    {
        for (var inner = folder; Path.GetDirectoryName(inner) is { } snapshots; inner = snapshots)
            if (Path.GetFileName(snapshots) == "snapshots" && Path.GetDirectoryName(snapshots) is { } repo &&
                Path.GetFileName(repo).StartsWith("models--", StringComparison.Ordinal))
                return Path.Combine(repo, "blobs");
        return null;
    }
}
