namespace OnnxStream.Graph;

/// <summary>
/// File metadata through symbolic links: a <see cref="FileInfo"/> of a link describes the link itself (its length is
/// the target path's), and the Hugging Face cache's snapshot folders are links to blobs, one a file.
/// </summary>
internal static class LinkedFile
{
    /// <summary>The file at <paramref name="path"/> or, for a link, the file its chain of links ends at (which may not exist).</summary>
    public static FileInfo Info(string path)
    {
        var info = new FileInfo(path);
        return info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target ? target : info;
    }
}
