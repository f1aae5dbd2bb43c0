using ScottPlot;

namespace OnnxStream.Cli.Bench;

/// <summary>Draws a bench report as a PNG: peak RSS and time per run of each configuration, side by side.</summary>
internal static class BenchChart
{
    private static readonly Color OnnxStreamColor = Colors.SteelBlue;
    private static readonly Color OrtColor = Colors.DarkOrange;

    /// <summary>Writes the chart of <paramref name="report"/>'s configurations that have figures to <paramref name="path"/>.</summary>
    public static void Draw(BenchReport report, string path, string? title = null)
    {
        var entries = report.Entries.Where(e => e.Measurement.Error is null).ToList();
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        var heading = title ?? Path.GetFileName(report.Model);
        Panel(multiplot.GetPlot(0), entries, e => e.Measurement.PeakRssBytes / 1048576.0, "peak RSS (MiB)", $"{heading}: peak RSS", "F0");
        Panel(multiplot.GetPlot(1), entries, e => e.Measurement.SteadyRunSeconds, report.Runs > 1 ? "seconds per run (after the first)" : "seconds per run",
            $"{heading}: time per run, {report.Threads} thread(s)", "F2");
        multiplot.SavePng(path, 1000 + 60 * entries.Count, 1100);
    }

    private static void Panel(Plot plot, IReadOnlyList<BenchEntry> entries, Func<BenchEntry, double?> value, string axis, string title, string format)
    {
        var bars = entries.Select((e, i) => new Bar
        {
            Position = i,
            Value = value(e) ?? 0,
            FillColor = e.Measurement.Engine == BenchMode.NameOf(BenchEngine.Ort) ? OrtColor : OnnxStreamColor,
            Label = value(e)?.ToString(format, System.Globalization.CultureInfo.InvariantCulture) ?? "",
        }).ToList();
        var series = plot.Add.Bars(bars);
        series.ValueLabelStyle.FontSize = 12;
        plot.Axes.Bottom.SetTicks([.. entries.Select((_, i) => (double)i)], [.. entries.Select(e => e.Label)]);
        plot.Axes.Bottom.TickLabelStyle.Rotation = 30;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Bottom.MinimumSize = 170;
        plot.Axes.Margins(bottom: 0, top: 0.15);
        plot.YLabel(axis);
        plot.Title(title);
    }
}
