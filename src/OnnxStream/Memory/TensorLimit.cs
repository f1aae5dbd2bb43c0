using OnnxStream.Graph;
using OnnxStream.Tensors;

namespace OnnxStream.Memory;

/// <summary>
/// The size check every tensor passes before its memory is allocated: its byte count, computed without overflow, against
/// a budget (<see cref="NativeAllocator.MaxTensorBytes"/>, <see cref="Runtime.InferenceSessionOptions.MaxTensorBytes"/>), so
/// that a model asking for a tensor larger than the machine can hold fails with an error naming it instead of exhausting
/// memory.
/// </summary>
public static class TensorLimit
{
    /// <summary>
    /// The default budget of one tensor: half of the memory the process may use (the machine's physical memory, or the
    /// container's limit when that is lower).
    /// </summary>
    public static long DefaultMaxBytes { get; } = Math.Max(1, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2);

    /// <summary>Bytes of a <paramref name="type"/> tensor of <paramref name="shape"/>; <see cref="long.MaxValue"/> when that overflows.</summary>
    public static long Bytes(ElementType type, ReadOnlySpan<int> shape)
    {
        long bytes = type.Size();
        foreach (var dimension in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(dimension, nameof(shape));
            if (dimension != 0 && bytes > long.MaxValue / dimension) return long.MaxValue;
            bytes *= dimension;
        }
        return bytes;
    }

    /// <summary>
    /// Whether a <paramref name="type"/> tensor of <paramref name="shape"/> takes at most <paramref name="maxBytes"/> and has
    /// at most <see cref="int.MaxValue"/> elements (the most one tensor can hold).
    /// </summary>
    public static bool Fits(ElementType type, ReadOnlySpan<int> shape, long maxBytes) =>
        Bytes(type, shape) <= maxBytes && Kernels.Shapes.FitsInTensor(shape);

    /// <summary>Why a tensor does not fit (see <see cref="Fits"/>), for error messages.</summary>
    internal static string Describe(ElementType type, ReadOnlySpan<int> shape, long maxBytes)
    {
        var bytes = Bytes(type, shape);
        var size = bytes == long.MaxValue ? "more than 2^63 bytes" : $"{bytes:N0} bytes";
        var reason = bytes > maxBytes
            ? $"more than the limit of {maxBytes:N0} bytes (MaxTensorBytes)"
            : $"more than the {int.MaxValue:N0} elements a tensor can hold";
        return $"{type.ToString().ToLowerInvariant()}[{string.Join(',', shape.ToArray())}] would take {size}, {reason}";
    }

    /// <summary>
    /// Checks every activation of <paramref name="graph"/> whose shape is known against <paramref name="maxBytes"/>, so that a
    /// run that would need a tensor too large is refused before it starts.
    /// </summary>
    /// <exception cref="ModelFormatException">An operation's output does not fit; the message names the node, the tensor and the size.</exception>
    public static void Check(ModelGraph graph, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(graph);
        foreach (var node in graph.Nodes)
            foreach (var output in node.Outputs)
            {
                var type = output.ActivationType ?? ElementType.Float32;
                if (output.HasStaticShape && !Fits(type, output.Shape, maxBytes))
                    throw new ModelFormatException($"{node}: output '{output.Name}' {Describe(type, output.Shape, maxBytes)}");
            }
    }
}

/// <summary>A tensor was refused before allocation: it would be larger than its allocator's <see cref="NativeAllocator.MaxTensorBytes"/>.</summary>
public sealed class TensorTooLargeException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TensorTooLargeException(string message) : base(message) { }
}
