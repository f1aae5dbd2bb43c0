namespace OnnxStream.Runtime;

/// <summary>
/// A NaN or an infinity where <see cref="InferenceSessionOptions.CheckFinite"/> (or a pipeline's check) forbids one: the
/// message names the model, the operation whose output first held it, the tensor and the element.
/// </summary>
public sealed class NonFiniteValueException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What and where.</param>
    /// <param name="model">The model's file or folder, when a model produced the value.</param>
    /// <param name="operation">The name of the operation whose output first held it, when one did.</param>
    /// <param name="inner">The exception this one adds context to (e.g. the step of a pipeline).</param>
    public NonFiniteValueException(string message, string? model = null, string? operation = null, Exception? inner = null)
        : base(message, inner)
    {
        Model = model;
        Operation = operation;
    }

    /// <summary>The model's file or folder, when a model produced the value.</summary>
    public string? Model { get; }

    /// <summary>The name of the operation (graph node) whose output first held the value, when one did.</summary>
    public string? Operation { get; }
}
