using OnnxStream.Fuzz;

namespace OnnxStream.Tests.Fuzz;

/// <summary>
/// The short deterministic fuzz run of every target (tests/OnnxStream.Fuzz): the generated seeds and 2,000 mutated
/// inputs each (seed 13), under the default allocation limit. ../shared's seeds are left out, so that the run
/// is the same on every clone; tests/OnnxStream.Fuzz/run-fuzz.sh makes the long runs.
/// </summary>
[Category("Fuzz")]
internal sealed class FuzzTests
{
    private const int Inputs = 2000;

    private static IEnumerable<string> Targets => FuzzTargets.Names;

    [TestCaseSource(nameof(Targets))]
    public void A_short_run_finds_nothing(string target)
    {
        // 30 s per input rather than 10: a busy CI machine must not make a slow input look like a hang.
        var report = FuzzRunner.Run(target, new FuzzOptions { Inputs = Inputs, Seed = 13, TimeLimit = TimeSpan.FromSeconds(30) });

        TestContext.Out.WriteLine(report);
        Assert.That(report.Findings, Is.Empty, string.Join("\n", report.Findings));
        Assert.That(report.Inputs, Is.GreaterThan(Inputs));
        // The mutants reach both sides: some parse (the readers' full paths run), some are refused.
        Assert.That(report.Parsed, Is.GreaterThan(0));
        Assert.That(report.Refused.Values.Sum(), Is.GreaterThan(0));
    }

    [TestCaseSource(nameof(Targets))]
    public void Every_seed_parses(string target)
    {
        var report = FuzzRunner.Run(target, new FuzzOptions { Inputs = 0 });

        Assert.That(report.Findings, Is.Empty, string.Join("\n", report.Findings));
        Assert.That(report.Parsed, Is.EqualTo(report.Inputs), string.Join(", ", report.Refused));
    }
}
