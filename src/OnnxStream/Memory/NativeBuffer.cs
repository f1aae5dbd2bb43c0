namespace OnnxStream.Memory;

/// <summary>
/// A block of <typeparamref name="T"/> elements in native memory from a <see cref="NativeAllocator"/>:
/// what native kernels read and write. Freed deterministically by <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class NativeBuffer<T> : IDisposable where T : unmanaged
{
    // Null for a buffer that wraps memory it does not own (a mapped weight file).
    private readonly NativeAllocator? _allocator;
    private T* _pointer;

    private NativeBuffer(NativeAllocator? allocator, T* pointer, int length)
    {
        _allocator = allocator;
        _pointer = pointer;
        Length = length;
    }

    /// <summary>Allocates <paramref name="length"/> zeroed elements.</summary>
    public static NativeBuffer<T> Allocate(int length, NativeAllocator? allocator = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        allocator ??= NativeAllocator.Shared;
        var bytes = (nuint)length * (nuint)sizeof(T);
        var pointer = (T*)allocator.Allocate(bytes);
        return new NativeBuffer<T>(allocator, pointer, length);
    }

    /// <summary>Allocates a buffer holding a copy of <paramref name="values"/>.</summary>
    public static NativeBuffer<T> CopyOf(ReadOnlySpan<T> values, NativeAllocator? allocator = null)
    {
        var buffer = Allocate(values.Length, allocator);
        values.CopyTo(buffer.Span);
        return buffer;
    }

    /// <summary>
    /// A buffer over <paramref name="length"/> elements at <paramref name="pointer"/>, owned elsewhere (not
    /// accounted, not freed by <see cref="Dispose"/>); the owner keeps the memory valid while it is used.
    /// </summary>
    internal static NativeBuffer<T> Wrap(T* pointer, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return new NativeBuffer<T>(null, pointer, length);
    }

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>The elements.</summary>
    public Span<T> Span => new(Pointer, Length);

    internal T* Pointer => _pointer != null ? _pointer : throw new ObjectDisposedException(nameof(NativeBuffer<T>));

    /// <summary>Returns the memory to its allocator (a wrapped buffer just lets go of it); later use throws.</summary>
    public void Dispose()
    {
        if (_pointer == null) return;
        _allocator?.Free(_pointer, (nuint)Length * (nuint)sizeof(T));
        _pointer = null;
    }
}
