namespace OnnxStream.StableDiffusion.Download;

/// <summary>
/// A repository could not be had: the hub is unreachable, refuses, lacks the repository or a file, or serves bytes
/// that do not match its listing; or the cache lacks what was asked for offline. The message names the endpoint, the
/// repository and the file or path concerned.
/// </summary>
public sealed class HubDownloadException : IOException
{
    /// <summary>An error with its message.</summary>
    public HubDownloadException(string message) : base(message)
    {
    }

    /// <summary>An error with its message and cause.</summary>
    public HubDownloadException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
