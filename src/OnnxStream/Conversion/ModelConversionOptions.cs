namespace OnnxStream.Conversion;

/// <summary>How <see cref="ModelFolderWriter"/> converts an ONNX model into a model folder.</summary>
public sealed class ModelConversionOptions
{
    /// <summary>Store every float32 weight as float16 (the original's CONVERT_TO_FP16).</summary>
    public bool Float16 { get; set; }

    /// <summary>
    /// Quantize every float32 weight to asymmetric uint8 per tensor over its 0.1%..99.9% percentile range
    /// (the original's QUANTIZE_UINT8); Conv biases, InstanceNormalization scales and biases and Resize
    /// scales stay float32. With <see cref="Float16"/> too, nothing is left to quantize (as in the original).
    /// </summary>
    public bool UInt8 { get; set; }

    /// <summary>
    /// Fold at conversion what the engine folds when it loads an .onnx (Identity and Dropout removal, shape
    /// arithmetic on constants, dead nodes), so the folder needs no simplifier. false reproduces the original
    /// converter's model.txt line for line (every node, in file order).
    /// </summary>
    public bool Fold { get; set; } = true;

    /// <summary>A range_data.txt (<c>OPNAME,MIN,MAX</c> lines, for W8A8 models) to check and copy into the folder; null for none.</summary>
    public string? RangeDataPath { get; set; }

    /// <summary>
    /// New names for activations (graph inputs and outputs), ONNX name → name in model.txt, e.g.
    /// <c>input_ids</c> → <c>onnx::Reshape_0</c> to match published folders whose exports named it so.
    /// </summary>
    public IDictionary<string, string> Renames { get; set; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// Let the .onnx's external data come from outside its folder (default false; see
    /// <see cref="Graph.ModelLoadOptions.AllowWeightsOutsideModelFolder"/>): otherwise a <c>location</c> with <c>../</c>, an
    /// absolute path or a link out of the folder stops the conversion before any byte of it is copied.
    /// </summary>
    public bool AllowWeightsOutsideModelFolder { get; set; }
}

/// <summary>Where a conversion is: a node has been written.</summary>
/// <param name="NodesWritten">Lines of model.txt written so far.</param>
/// <param name="NodeCount">Lines model.txt will have.</param>
/// <param name="NodeName">The node just written.</param>
/// <param name="WeightFilesWritten">.bin files written so far.</param>
/// <param name="BytesWritten">Bytes of .bin files written so far.</param>
public readonly record struct ConversionProgress(int NodesWritten, int NodeCount, string NodeName, int WeightFilesWritten, long BytesWritten);

/// <summary>What a conversion wrote, and what it needed.</summary>
/// <param name="Folder">The model folder.</param>
/// <param name="NodeCount">Lines of model.txt.</param>
/// <param name="WeightFileCount">.bin files written (a Conv kernel counts twice: _nchw and _nhwc).</param>
/// <param name="BytesWritten">Bytes of .bin files.</param>
/// <param name="LargestWeightBytes">The largest weight as read from the ONNX file.</param>
/// <param name="PeakNativeBytes">Peak of the converter's tracked native memory (weights are converted one at a time).</param>
public sealed record ConversionResult(string Folder, int NodeCount, int WeightFileCount, long BytesWritten, long LargestWeightBytes, long PeakNativeBytes);
