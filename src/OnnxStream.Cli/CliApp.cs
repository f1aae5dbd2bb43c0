using System.CommandLine;
using OnnxStream.Cli.Bench;
using OnnxStream.Graph;
using OnnxStream.Operators;

namespace OnnxStream.Cli;

/// <summary>
/// The <c>onnxstream</c> command line: its commands, and what a failure prints. A failure the user can fix (a bad file,
/// argument or path: the exception types of <see cref="IsUserError"/>) prints one line <c>error: ...</c> and exits 1; a
/// cancelled command (Ctrl-C) prints <c>cancelled</c> and exits 130; anything else is a bug, printed with its stack trace
/// and exit code 70.
/// </summary>
internal static class CliApp
{
    /// <summary>The exit code of a user error.</summary>
    public const int UserErrorExitCode = 1;

    /// <summary>The exit code of a cancelled command (128 + SIGINT, as shells report an interrupted program).</summary>
    public const int CancelledExitCode = 130;

    /// <summary>The exit code of a bug (sysexits' EX_SOFTWARE).</summary>
    public const int InternalErrorExitCode = 70;

    /// <summary>Every command of <c>onnxstream</c>.</summary>
    public static RootCommand CreateRootCommand()
    {
        var root = new RootCommand("onnxstream: run large ONNX models in a small, predictable amount of RAM.");
        root.Subcommands.Add(VersionCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(CalibrateCommand.Create());
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(BenchKernelsCommand.Create());
        root.Subcommands.Add(BenchAttentionCommand.Create());
        root.Subcommands.Add(SynthCommand.Create());
        root.Subcommands.Add(SdCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(BenchChild.Create());
        root.Subcommands.Add(BenchCommand.CreateReport());
        return root;
    }

    /// <summary>
    /// Runs the command line <paramref name="args"/>; errors go to <paramref name="error"/> (default: standard error).
    /// <paramref name="cancellationToken"/> (Ctrl-C in <c>Program</c>) reaches the command's work.
    /// </summary>
    /// <returns>The process exit code.</returns>
    public static async Task<int> RunAsync(string[] args, TextWriter? error = null, CancellationToken cancellationToken = default)
    {
        error ??= Console.Error;
        var configuration = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null, Error = error };
        try
        {
            return await CreateRootCommand().Parse(args).InvokeAsync(configuration, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            error.WriteLine("cancelled");
            return CancelledExitCode;
        }
        catch (Exception e) when (IsUserError(e))
        {
            // Bad input is the user's to fix: say what and where, without a stack trace.
            error.WriteLine($"error: {e.Message.ReplaceLineEndings(" ")}");
            return UserErrorExitCode;
        }
        catch (Exception e)
        {
            error.WriteLine($"internal error (a bug, please report it): {e}");
            return InternalErrorExitCode;
        }
    }

    /// <summary>
    /// Whether <paramref name="e"/> reports something the user can fix (its message names the file, argument or path):
    /// bad arguments, malformed files (models, .npy, tokenizer, scheduler, JSON reports), unreadable or unwritable paths,
    /// models the engine cannot run, a download that timed out.
    /// </summary>
    public static bool IsUserError(Exception e) =>
        e is ArgumentException or ModelFormatException or OperatorException or IOException or UnauthorizedAccessException or FormatException
            or InvalidDataException or NativeKernelException or Memory.TensorTooLargeException or Runtime.NonFiniteValueException
            or OperationCanceledException;
}
