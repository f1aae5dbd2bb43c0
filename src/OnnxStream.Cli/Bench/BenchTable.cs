using System.Globalization;
using System.Text;

namespace OnnxStream.Cli.Bench;

/// <summary>Bench reports as text tables (Markdown pipe tables, readable on a console too).</summary>
internal static class BenchTable
{
    /// <summary>
    /// The configurations table (times in seconds, memory in MiB, ratios to each ONNX Runtime mode), then, when
    /// traced, the milliseconds per run of each operator type.
    /// </summary>
    public static string Format(BenchReport report)
    {
        var references = report.Entries.SelectMany(e => e.VersusOrt.Keys).Distinct().ToList();
        var header = new List<string> { "configuration", "load s", "first run s", "later runs s", "baseline RSS MiB", "peak RSS MiB", "tracked peak MiB" };
        foreach (var reference in references) header.AddRange([$"RSS / ort:{reference}", $"time / ort:{reference}"]);
        var rows = report.Entries.Select(e =>
        {
            var m = e.Measurement;
            if (m.Error is not null) return (IReadOnlyList<string>)[e.Label, "failed"];
            var row = new List<string>
            {
                e.Label, Number(m.LoadSeconds, "F2"), Number(m.FirstRunSeconds, "F2"),
                m.RunSeconds.Length > 1 ? Number(m.SteadyRunSeconds, "F2") : "-",
                Mebibytes(m.BaselineRssBytes), Mebibytes(m.PeakRssBytes), Mebibytes(m.TrackedPeakBytes),
            };
            foreach (var reference in references)
            {
                var ratios = e.VersusOrt.GetValueOrDefault(reference);
                row.AddRange([Ratio(ratios?.PeakRss), Ratio(ratios?.SteadyRun)]);
            }
            return row;
        }).ToList();
        var text = new StringBuilder(Pipe(header, rows));
        foreach (var failed in report.Entries.Where(e => e.Measurement.Error is not null))
            text.AppendLine().AppendLine($"{failed.Label} failed: {failed.Measurement.Error}");
        var traced = report.Entries.Where(e => e.Measurement.OperatorMilliseconds is { Count: > 0 }).ToList();
        if (traced.Count > 0)
        {
            text.AppendLine().AppendLine("milliseconds per run by operator type:").AppendLine();
            var operators = traced.SelectMany(e => e.Measurement.OperatorMilliseconds!)
                .GroupBy(p => p.Key).OrderByDescending(g => g.Max(p => p.Value)).Select(g => g.Key).ToList();
            text.Append(Pipe(["operator", .. traced.Select(e => e.Label)],
                operators.Select(op => (IReadOnlyList<string>)[op, .. traced.Select(e =>
                    e.Measurement.OperatorMilliseconds!.TryGetValue(op, out var ms) ? Number(ms, "F0") : "")]).ToList()));
        }
        return text.ToString();
    }

    /// <summary>"1.23" as the time or memory fraction, "-" when unknown.</summary>
    public static string Ratio(double? value) => value switch
    {
        null => "-",
        < 0.1 => $"1/{(1 / value.Value).ToString("F0", CultureInfo.InvariantCulture)}",
        _ => value.Value.ToString("F2", CultureInfo.InvariantCulture) + "x",
    };

    private static string Number(double? value, string format) => value?.ToString(format, CultureInfo.InvariantCulture) ?? "-";

    private static string Mebibytes(long? bytes) => Number(bytes / 1048576.0, "F0");

    private static string Pipe(IReadOnlyList<string> header, IReadOnlyList<IReadOnlyList<string>> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Max(r => i < r.Count ? r[i].Length : 0))).ToArray();
        var text = new StringBuilder();
        void Line(IEnumerable<string> cells) =>
            text.Append("| ").AppendJoin(" | ", cells.Select((c, i) => i < widths.Length ? c.PadRight(widths[i]) : c)).AppendLine(" |");
        Line(header);
        Line(widths.Select(w => new string('-', w)));
        foreach (var row in rows) Line(row);
        return text.ToString();
    }
}
