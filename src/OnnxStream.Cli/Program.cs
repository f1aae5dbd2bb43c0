using OnnxStream.Cli;

// Ctrl-C (and SIGTERM) cancel the command's work, which cleans up its partial files, instead of killing the process.
using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // A second Ctrl-C, while the first one's cleanup runs, ends the process at once.
    e.Cancel = !cancellation.IsCancellationRequested;
    cancellation.Cancel();
};
using var terminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    cancellation.Cancel();
});
return await CliApp.RunAsync(args, cancellationToken: cancellation.Token);
