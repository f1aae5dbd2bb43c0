namespace OnnxStream.Memory;

/// <summary>
/// A block of <typeparamref name="T"/> elements in native memory from a <see cref="NativeAllocator"/>:
/// what native kernels read and write. Freed deterministically by <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class NativeBuffer<T> : IDisposable where T : unmanaged
{
    private readonly NativeAllocator _allocator;
    private T* _pointer;

    private NativeBuffer(NativeAllocator allocator, T* pointer, int length)
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
        new Span<T>(pointer, length).Clear();
        return new NativeBuffer<T>(allocator, pointer, length);
    }

    /// <summary>Allocates a buffer holding a copy of <paramref name="values"/>.</summary>
    public static NativeBuffer<T> CopyOf(ReadOnlySpan<T> values, NativeAllocator? allocator = null)
    {
        var buffer = Allocate(values.Length, allocator);
        values.CopyTo(buffer.Span);
        return buffer;
    }

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>The elements.</summary>
    public Span<T> Span => new(Pointer, Length);

    internal T* Pointer => _pointer != null ? _pointer : throw new ObjectDisposedException(nameof(NativeBuffer<T>));

    /// <summary>Returns the memory to its allocator; later use throws.</summary>
    public void Dispose()
    {
        if (_pointer == null) return;
        _allocator.Free(_pointer, (nuint)Length * (nuint)sizeof(T));
        _pointer = null;
    }
}
