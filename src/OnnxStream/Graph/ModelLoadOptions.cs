namespace OnnxStream.Graph;

/// <summary>How <see cref="ModelLoader"/> loads a model.</summary>
public sealed class ModelLoadOptions
{
    /// <summary>
    /// Let the model read files outside its folder (default false). Every file a model names (a model.txt weight, the
    /// <c>location</c> of an .onnx tensor's external data) must otherwise resolve, its links followed, to a file inside
    /// the folder of the model.txt or .onnx (the folder's own path may go through links); a name with <c>../</c>, an
    /// absolute path or a link that leads elsewhere is a <see cref="ModelFormatException"/> naming the tensor and the
    /// path, so a model cannot read arbitrary files of the machine into its outputs. Set it only for a model you trust.
    /// </summary>
    public bool AllowWeightsOutsideModelFolder { get; set; }

    /// <summary>
    /// An operation output whose declared shape differs from the one computed from its inputs and attributes (a wrong or cut
    /// line) is reported to <see cref="Warning"/> and the computed shape used, rather than a <see cref="ModelFormatException"/>
    /// (default false).
    /// </summary>
    public bool Lenient { get; set; }

    /// <summary>Told of each problem <see cref="Lenient"/> lets through; null: nobody is.</summary>
    public Action<string>? Warning { get; set; }
}
