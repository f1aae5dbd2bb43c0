using System.Globalization;
using OnnxStream.Fuzz;
using OnnxStream.Memory;
using SharpFuzz;

// The fuzz driver; run-fuzz.sh beside this file wraps it (build, memory cap, afl-fuzz). See README.md here.
const string Usage = """
    usage: OnnxStream.Fuzz run TARGET|all [INPUTS] [--seed N] [--shared DIR|--no-shared] [--findings DIR]
                                          [--time-limit-s N] [--max-alloc-mb N]
           OnnxStream.Fuzz seeds TARGET DIR     write TARGET's seeds to DIR/in (afl-fuzz -i) and its files to DIR/work
           OnnxStream.Fuzz afl TARGET WORK      the SharpFuzz loop, under afl-fuzz (WORK: the seeds command's DIR/work)
           OnnxStream.Fuzz repro TARGET FILE... run inputs once each and say what they did
    targets: 
    """;

if (args.Length < 2) return Fail(Usage + string.Join(", ", FuzzTargets.Names));
var target = args[1];
if (target != "all" && !FuzzTargets.Names.Contains(target)) return Fail($"unknown target '{target}' (one of {string.Join(", ", FuzzTargets.Names)}, or all)");
var defaultShared = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../../shared"));
switch (args[0])
{
    case "run":
    {
        var options = new FuzzOptions { SharedRoot = Directory.Exists(defaultShared) ? defaultShared : null };
        for (var i = 2; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--seed": options.Seed = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--shared": options.SharedRoot = Value(); break;
                case "--no-shared": options.SharedRoot = null; break;
                case "--findings": options.FindingsDirectory = Value(); break;
                case "--time-limit-s": options.TimeLimit = TimeSpan.FromSeconds(double.Parse(Value(), CultureInfo.InvariantCulture)); break;
                case "--max-alloc-mb": options.AllocationLimitBytes = long.Parse(Value(), CultureInfo.InvariantCulture) << 20; break;
                default: options.Inputs = int.Parse(args[i], CultureInfo.InvariantCulture); break;
            }
        }
        Console.WriteLine($"seed {options.Seed}, {options.Inputs} mutated inputs per target, shared seeds: {options.SharedRoot ?? "none"}");
        var findings = 0;
        foreach (var name in target == "all" ? FuzzTargets.Names : [target])
        {
            var report = FuzzRunner.Run(name, options);
            Console.WriteLine(report);
            foreach (var finding in report.Findings) Console.WriteLine(finding);
            findings += report.Findings.Count;
        }
        return findings == 0 ? 0 : 1;
    }
    case "seeds" when args.Length == 3:
    {
        // DIR/in: the seeds (afl-fuzz -i); DIR/work: the files the inputs refer to, for the afl command. Made here, by
        // code that is not instrumented: instrumented code may only run inside SharpFuzz's loop.
        var seeds = FuzzSeeds.Prepare(target, Path.Combine(args[2], "work"), Directory.Exists(defaultShared) ? defaultShared : null);
        Directory.CreateDirectory(Path.Combine(args[2], "in"));
        for (var i = 0; i < seeds.Count; i++) File.WriteAllBytes(Path.Combine(args[2], "in", $"seed{i}"), seeds[i]);
        Console.WriteLine($"{seeds.Count} seeds in {Path.Combine(args[2], "in")}");
        return 0;
    }
    case "afl" when args.Length == 3:
    {
        // afl-fuzz gives each input on stdin; an exception that is not a user error is a crash, a hang its -t timeout.
        var work = args[2];
        Fuzzer.OutOfProcess.Run(stream =>
        {
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            FuzzTargets.Run(target, buffer.ToArray(), work, new NativeAllocator());
        });
        return 0;
    }
    case "repro" when args.Length >= 3:
    {
        var work = Directory.CreateTempSubdirectory($"fuzz-repro-{target}-").FullName;
        FuzzSeeds.Prepare(target, work, Directory.Exists(defaultShared) ? defaultShared : null);
        var failed = 0;
        foreach (var file in args[2..])
        {
            var outcome = FuzzRunner.Check(target, File.ReadAllBytes(file), work, new FuzzOptions());
            Console.WriteLine($"{file}: " + (outcome.Finding?.ToString() ?? (outcome.Refusal is { } e ? $"refused: {e.GetType().Name}: {e.Message}" : "parsed")));
            if (outcome.Finding is not null) failed++;
        }
        return failed == 0 ? 0 : 1;
    }
    default:
        return Fail(Usage + string.Join(", ", FuzzTargets.Names));
}

static int Fail(string message)
{
    Console.Error.WriteLine(message);
    return 2;
}
