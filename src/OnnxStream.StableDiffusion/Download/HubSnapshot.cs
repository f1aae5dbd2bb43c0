namespace OnnxStream.StableDiffusion.Download;

/// <summary>A repository revision as it stands in the hub cache after <see cref="HubDownloader.DownloadAsync"/>.</summary>
/// <param name="RepoId">The repository, <c>ORG/NAME</c>.</param>
/// <param name="Commit">The commit the revision resolved to.</param>
/// <param name="Folder">The snapshot folder: the repository's files (those asked for) under their paths.</param>
/// <param name="FilesDownloaded">Files fetched from the hub this time (0 when the cache had them all).</param>
/// <param name="BytesDownloaded">Bytes received this time, retries included.</param>
/// <param name="Notice">Why the cache was used without asking the hub (offline), or null.</param>
public sealed record HubSnapshot(string RepoId, string Commit, string Folder, int FilesDownloaded, long BytesDownloaded, string? Notice);
