namespace OnnxStream.StableDiffusion.Download;

/// <summary>When <see cref="HubDownloader"/> goes to the network.</summary>
public enum HubDownloadMode
{
    /// <summary>
    /// Ask the hub for the revision's files and download those the cache lacks (none when the snapshot is complete);
    /// when the hub cannot be reached, use the cached snapshot of the revision if there is one.
    /// </summary>
    Auto,
    /// <summary>Download every file again, even those in the cache.</summary>
    Force,
    /// <summary>Use the cache only: the snapshot the revision last pointed to, or an error naming the path missing.</summary>
    Never,
}
