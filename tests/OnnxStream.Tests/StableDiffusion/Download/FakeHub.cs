using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using OnnxStream.Tests.Models;
using OnnxStream.Tests.Weights;

namespace OnnxStream.Tests.StableDiffusion.Download;

/// <summary>
/// A fake Hugging Face hub on loopback holding one revision of one repository: the listing API
/// (<c>/api/models/REPO/revision/main?blobs=true</c>: commit, sizes, blob ids, SHA-256 of the LFS files) and the
/// <c>/REPO/resolve/COMMIT/PATH</c> URLs, served by <see cref="LoopbackRangeServer"/> (which can misbehave on demand).
/// </summary>
internal sealed class FakeHub : IDisposable
{
    public const string Commit = "5a2e4c0d8f6b1e3a7c9d0b2f4e6a8c1d3f5b7e90";

    public FakeHub(string repoId, IReadOnlyDictionary<string, byte[]> files)
    {
        RepoId = repoId;
        Files = files;
        var served = files.ToDictionary(file => $"{repoId}/resolve/{Commit}/{file.Key}", file => file.Value);
        served[$"api/models/{repoId}/revision/main?blobs=true"] = Listing(repoId, files);
        Server = new LoopbackRangeServer(served);
    }

    public string RepoId { get; }

    /// <summary>The repository's files by path.</summary>
    public IReadOnlyDictionary<string, byte[]> Files { get; }

    public LoopbackRangeServer Server { get; }

    public string Endpoint => Server.BaseAddress.AbsoluteUri.TrimEnd('/');

    /// <summary>A hub serving <paramref name="paths"/> of ../shared/models/tiny-sd15 as <paramref name="repoId"/>.</summary>
    public static FakeHub ServingTinySd15(string repoId, Func<string, IEnumerable<string>> paths)
    {
        var root = SharedFixtures.Require("models/tiny-sd15");
        return new FakeHub(repoId, paths(root).ToDictionary(path => path, path => File.ReadAllBytes(Path.Combine(root, path))));
    }

    /// <summary>
    /// What an SD 1.5 generation needs in the original's layout (tokenizer, text_encoder_fp32, unet_fp16, vae_decoder_fp16),
    /// plus a README.txt at the root that is not part of it.
    /// </summary>
    public static IEnumerable<string> PipelineFiles(string root) =>
        new[] { "README.txt", "tokenizer/vocab.txt", "tokenizer/merges.txt" }.Concat(
            new[] { "text_encoder_fp32", "unet_fp16", "vae_decoder_fp16" }.SelectMany(folder =>
                Directory.EnumerateFiles(Path.Combine(root, folder), "*", SearchOption.AllDirectories).Select(path => Path.GetRelativePath(root, path).Replace('\\', '/'))));

    /// <summary>A few files: the tokenizer, the UNet's model.txt and its six largest weights (LFS files).</summary>
    public static IEnumerable<string> FewFiles(string root) =>
        new[] { "tokenizer/vocab.txt", "tokenizer/merges.txt", "unet_fp16/model.txt" }.Concat(
            new DirectoryInfo(Path.Combine(root, "unet_fp16")).EnumerateFiles("*.bin").OrderByDescending(f => f.Length).ThenBy(f => f.Name, StringComparer.Ordinal)
                .Take(6).Select(f => "unet_fp16/" + f.Name));

    /// <summary>Weights are LFS files (listed with their SHA-256), the rest plain Git files, as in the published repositories.</summary>
    public static bool IsLfs(string path) => path.EndsWith(".bin", StringComparison.Ordinal);

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Git's id of a blob: SHA-1 of "blob SIZE\0" and the bytes.</summary>
    public static string GitBlobId(byte[] bytes) => Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));

    /// <summary>The name of a file's blob in the cache (the hub's ETag).</summary>
    public static string BlobName(string path, byte[] bytes) => IsLfs(path) ? Sha256(bytes) : GitBlobId(bytes);

    /// <summary>The server path a file is fetched from.</summary>
    public string ResolvePath(string path) => $"/{RepoId}/resolve/{Commit}/{path}";

    /// <summary>The requests for a file so far.</summary>
    public ServedRequest[] RequestsFor(string path) => [.. Server.Requests.Where(r => r.Path == ResolvePath(path))];

    /// <summary>A loopback address nothing listens on (a port the system gave out and took back).</summary>
    public static string DeadEndpoint()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"http://127.0.0.1:{port}";
    }

    private static byte[] Listing(string repoId, IReadOnlyDictionary<string, byte[]> files) => JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
    {
        ["id"] = repoId,
        ["sha"] = Commit,
        ["siblings"] = files.Select(file => new Dictionary<string, object>
        {
            ["rfilename"] = file.Key,
            ["size"] = file.Value.LongLength,
            ["blobId"] = IsLfs(file.Key) ? GitBlobId(Encoding.ASCII.GetBytes($"version https://git-lfs.github.com/spec/v1\noid sha256:{Sha256(file.Value)}\n")) : GitBlobId(file.Value),
            ["lfs"] = IsLfs(file.Key) ? new Dictionary<string, object> { ["sha256"] = Sha256(file.Value), ["size"] = file.Value.LongLength, ["pointerSize"] = 134 } : null!,
        }.Where(pair => pair.Value is not null).ToDictionary()).ToArray(),
    });

    public void Dispose() => Server.Dispose();
}
