using OnnxStream.Cli;

namespace OnnxStream.Tests.Cli;

/// <summary>Runs the <c>onnxstream</c> command line in-process (<see cref="CliApp.RunAsync"/>), capturing what it prints as errors.</summary>
internal static class CliRunner
{
    /// <summary>The exit code and standard error of <c>onnxstream ARGS</c>.</summary>
    public static (int ExitCode, string Error) Run(params string[] arguments) => Run(CancellationToken.None, arguments);

    /// <summary>The exit code and standard error of <c>onnxstream ARGS</c>, cancelled by <paramref name="cancellationToken"/> (Ctrl-C).</summary>
    public static (int ExitCode, string Error) Run(CancellationToken cancellationToken, params string[] arguments)
    {
        var error = new StringWriter();
        var exitCode = CliApp.RunAsync(arguments, error, cancellationToken).GetAwaiter().GetResult();
        TestContext.Out.WriteLine($"onnxstream {string.Join(' ', arguments)} -> {exitCode}: {error}");
        return (exitCode, error.ToString());
    }

    /// <summary>Asserts a user error: exit code 1 and one line <c>error: ...</c> containing <paramref name="expected"/>, no stack trace.</summary>
    public static void AssertUserError((int ExitCode, string Error) result, params string[] expected)
    {
        var lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.That(result.ExitCode, Is.EqualTo(CliApp.UserErrorExitCode), result.Error);
        Assert.That(lines, Has.Length.EqualTo(1), "one line");
        Assert.That(lines[0], Does.StartWith("error: ").And.Not.Contains("   at ").And.Not.Contains("Exception"));
        foreach (var text in expected) Assert.That(lines[0], Does.Contain(text));
    }
}
