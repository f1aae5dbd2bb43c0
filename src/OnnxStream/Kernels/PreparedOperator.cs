using OnnxStream.Interop;

namespace OnnxStream.Kernels;

/// <summary>
/// A native operator whose weights XNNPACK packed once at creation, so many runs skip packing. A run
/// is not re-entrant in XNNPACK (setup and run share state), so runs on one operator are serialized.
/// </summary>
public abstract class PreparedOperator : IDisposable
{
    private protected PreparedOperator(OsnOperatorHandle handle, KernelDataType dataType)
    {
        Handle = handle;
        DataType = dataType;
    }

    /// <summary>The element type of the operator's inputs and outputs.</summary>
    public KernelDataType DataType { get; }

    private protected OsnOperatorHandle Handle { get; }

    /// <summary>Held while a run sets up and runs the native operator.</summary>
    private protected Lock RunLock { get; } = new();

    /// <summary>Throws unless <typeparamref name="T"/> is the operator's element type.</summary>
    private protected void CheckElementType<T>() where T : unmanaged
    {
        if (KernelDataTypes.Of<T>() != DataType)
            throw new ArgumentException($"This {GetType().Name} is {DataType}; it cannot run on {typeof(T).Name} buffers.");
    }

    /// <summary>Frees the packed weights.</summary>
    public void Dispose()
    {
        Handle.Dispose();
        GC.SuppressFinalize(this);
    }
}
