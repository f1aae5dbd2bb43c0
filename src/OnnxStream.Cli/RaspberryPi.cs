namespace OnnxStream.Cli;

/// <summary>Whether this machine is a Raspberry Pi, for <c>onnxstream sd --rpi A</c>.</summary>
internal static class RaspberryPi
{
    /// <summary>
    /// The board's model when this is a Raspberry Pi, else null: Linux's device tree model
    /// (<c>/proc/device-tree/model</c>, e.g. "Raspberry Pi 4 Model B Rev 1.4"), or else the <c>Model</c> line of
    /// <c>/proc/cpuinfo</c> (Raspberry Pi OS kernels write one). Files that cannot be read count as absent.
    /// </summary>
    public static string? Detect() => OperatingSystem.IsLinux() ? Identify(ReadOrNull("/proc/device-tree/model"), ReadOrNull("/proc/cpuinfo")) : null;

    /// <summary>The model when <paramref name="deviceTreeModel"/> or <paramref name="cpuInfo"/>'s Model line names a Raspberry Pi, else null.</summary>
    /// <param name="deviceTreeModel">The contents of /proc/device-tree/model (NUL-terminated), or null.</param>
    /// <param name="cpuInfo">The contents of /proc/cpuinfo, or null.</param>
    public static string? Identify(string? deviceTreeModel, string? cpuInfo)
    {
        var model = deviceTreeModel?.TrimEnd('\0', '\n', ' ');
        if (IsPi(model)) return model;
        foreach (var line in (cpuInfo ?? "").Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon > 0 && line[..colon].Trim() == "Model" && line[(colon + 1)..].Trim() is var value && IsPi(value)) return value;
        }
        return null;
    }

    private static bool IsPi(string? model) => model?.StartsWith("Raspberry Pi", StringComparison.Ordinal) == true;

    private static string? ReadOrNull(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
