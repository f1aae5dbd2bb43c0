using System.Diagnostics;
using OnnxStream.StableDiffusion.Download;
using OnnxStream.StableDiffusion.Pipeline;
using Spectre.Console;

namespace OnnxStream.Cli;

/// <summary>
/// Where <c>onnxstream sd</c> takes its models from: <c>--models-path</c> when it exists, else the snapshot of the
/// original's published repository in the Hugging Face hub cache, downloaded (what is missing, or everything with
/// <c>--download F</c>) unless <c>--download N</c>.
/// </summary>
internal static class SdModelDownload
{
    /// <summary>The models folder for <paramref name="modelsPath"/> and <paramref name="download"/> (A/auto, F/force, N/never, or null: auto without a models path, never with one).</summary>
    public static async Task<string> ResolveAsync(string? modelsPath, string? download, ModelKind kind, CancellationToken cancellationToken)
    {
        var mode = download?.ToUpperInvariant()[0] switch
        {
            'A' => HubDownloadMode.Auto,
            'F' => HubDownloadMode.Force,
            'N' => HubDownloadMode.Never,
            _ => modelsPath is null ? HubDownloadMode.Auto : HubDownloadMode.Never,
        };
        if (modelsPath is not null)
        {
            // A missing folder with downloads off is the pipeline's to report (it names the path).
            if (mode == HubDownloadMode.Never) return modelsPath;
            if (Directory.Exists(modelsPath))
            {
                Console.WriteLine($"--models-path {modelsPath} exists: using it as is, without downloading.");
                return modelsPath;
            }
            Console.WriteLine($"--models-path {modelsPath} does not exist: using the Hugging Face hub cache.");
        }
        var repository = PublishedModelRepository.For(kind);
        var downloader = new HubDownloader();
        var clock = Stopwatch.StartNew();
        HubSnapshot snapshot = null!;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context => snapshot = await downloader.DownloadAsync(repository.RepoId, mode, repository.IncludePatterns,
                progress: new DownloadProgressView(context, repository.RepoId), cancellationToken: cancellationToken));
        if (snapshot.Notice is { } notice) Console.WriteLine(notice);
        Console.WriteLine(snapshot.FilesDownloaded > 0
            ? $"{repository.RepoId}: downloaded {snapshot.FilesDownloaded} files, {snapshot.BytesDownloaded / 1048576.0:F1} MiB in {clock.Elapsed.TotalSeconds:F1} s " +
              $"({snapshot.BytesDownloaded / 1048576.0 / Math.Max(clock.Elapsed.TotalSeconds, 1e-3):F1} MiB/s), into {snapshot.Folder}"
            : $"{repository.RepoId}: using {snapshot.Folder}");
        return snapshot.Folder;
    }

    /// <summary>A bar for the whole download and one for each file while it downloads (bytes, bytes/s, time left).</summary>
    private sealed class DownloadProgressView(ProgressContext context, string repoId) : IProgress<HubDownloadProgress>
    {
        private readonly Dictionary<string, ProgressTask> _files = [];
        private ProgressTask? _total;

        public void Report(HubDownloadProgress value)
        {
            lock (_files) // files report from several threads
            {
                _total ??= context.AddTask(repoId, maxValue: Math.Max(1, value.TotalSize));
                _total.Value = value.TotalBytes;
                _total.Description = $"{repoId}: {value.FilesDone}/{value.FileCount} files";
                if (!_files.TryGetValue(value.File, out var file))
                    _files[value.File] = file = context.AddTask(value.File, maxValue: Math.Max(1, value.FileSize));
                file.Value = value.FileSize == 0 ? 1 : value.FileBytes;
            }
        }
    }
}
