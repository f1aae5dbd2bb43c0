namespace OnnxStream.StableDiffusion.Download;

/// <summary>
/// How far a <see cref="HubDownloader"/> download is: reported as each file starts, every megabyte or so while it
/// arrives, and when it is done (from several threads at once when files download in parallel). The totals count
/// only the files being downloaded, not those already in the cache.
/// </summary>
/// <param name="File">The file's path in the repository.</param>
/// <param name="FileBytes">Its bytes on disk so far (a resumed file starts above 0; a restarted one goes back).</param>
/// <param name="FileSize">Its size.</param>
/// <param name="TotalBytes">The bytes on disk so far, over all the files being downloaded.</param>
/// <param name="TotalSize">Their total size.</param>
/// <param name="FilesDone">Files finished and verified.</param>
/// <param name="FileCount">Files being downloaded.</param>
public sealed record HubDownloadProgress(string File, long FileBytes, long FileSize, long TotalBytes, long TotalSize, int FilesDone, int FileCount);
