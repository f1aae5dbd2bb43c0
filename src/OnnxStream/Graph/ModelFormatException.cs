namespace OnnxStream.Graph;

/// <summary>A model file is malformed or inconsistent; the message names the file, line, node or tensor.</summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ModelFormatException(string message, Exception? inner = null) : base(message, inner) { }
}
