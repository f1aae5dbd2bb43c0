using System.Globalization;

namespace OnnxStream.Cli.Bench;

/// <summary>The resident set size of this process, from <c>/proc/self/status</c> (Linux).</summary>
internal static class ProcessMemory
{
    /// <summary>Current resident bytes (VmRSS), or null where /proc is not available.</summary>
    public static long? CurrentRssBytes() => Read("VmRSS");

    /// <summary>The most resident bytes the process has held (VmHWM, its high-water mark), or null where /proc is not available.</summary>
    public static long? PeakRssBytes() => Read("VmHWM");

    private static long? Read(string field)
    {
        const string status = "/proc/self/status";
        return File.Exists(status) ? ParseStatusField(File.ReadAllText(status), field) : null;
    }

    /// <summary>
    /// The bytes of <paramref name="field"/> in a /proc/PID/status text (lines such as <c>VmHWM:	  123456 kB</c>),
    /// or null when it has no such line.
    /// </summary>
    /// <exception cref="FormatException">The line is there but is not "NUMBER kB".</exception>
    public static long? ParseStatusField(string statusText, string field)
    {
        foreach (var line in statusText.Split('\n'))
        {
            if (!line.StartsWith(field + ":", StringComparison.Ordinal)) continue;
            var parts = line[(field.Length + 1)..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2 || parts[1] != "kB" || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var kilobytes))
                throw new FormatException($"/proc status line '{line}' is not '{field}: NUMBER kB'.");
            return kilobytes * 1024;
        }
        return null;
    }
}
