using System.CommandLine;

namespace OnnxStream.Cli;

/// <summary>
/// <c>--allow-outside-weights</c>, on every command that loads a model: lets it read files outside its folder
/// (<see cref="Graph.ModelLoadOptions.AllowWeightsOutsideModelFolder"/>).
/// </summary>
internal static class AllowOutsideWeightsOption
{
    public static Option<bool> Create() => new("--allow-outside-weights")
    {
        Description = "Let the model read files outside its folder (a weight or external data named with ../, an absolute path or a link out of it). Only for a model you trust.",
    };
}
