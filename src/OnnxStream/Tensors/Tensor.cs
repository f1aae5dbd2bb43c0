using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tensors;

/// <summary>
/// A dense, row-major tensor whose elements live in accounted native memory. Disposing it frees the
/// memory at once; nothing waits for the garbage collector.
/// </summary>
public sealed class Tensor : IDisposable
{
    // A NativeBuffer<T> of the element type's CLR type (bool is stored as byte).
    private readonly IDisposable _buffer;

    private Tensor(ElementType type, int[] shape, IDisposable buffer, Quantization? quantization)
    {
        ElementType = type;
        Shape = shape;
        _buffer = buffer;
        Quantization = quantization;
    }

    /// <summary>Allocates a zeroed tensor.</summary>
    /// <exception cref="TensorTooLargeException">The tensor would be larger than the allocator's <see cref="NativeAllocator.MaxTensorBytes"/>.</exception>
    public static Tensor Allocate(ElementType type, ReadOnlySpan<int> shape, NativeAllocator? allocator = null,
        Quantization? quantization = null)
    {
        allocator ??= NativeAllocator.Shared;
        if (!TensorLimit.Fits(type, shape, allocator.MaxTensorBytes))
            throw new TensorTooLargeException(TensorLimit.Describe(type, shape, allocator.MaxTensorBytes));
        var count = (int)Shapes.ElementCount(shape);
        IDisposable buffer = type switch
        {
            ElementType.Float32 => NativeBuffer<float>.Allocate(count, allocator),
            ElementType.Float16 => NativeBuffer<Half>.Allocate(count, allocator),
            ElementType.Int64 => NativeBuffer<long>.Allocate(count, allocator),
            ElementType.Int32 => NativeBuffer<int>.Allocate(count, allocator),
            _ => NativeBuffer<byte>.Allocate(count, allocator),
        };
        return new Tensor(type, shape.ToArray(), buffer, quantization);
    }

    /// <summary>
    /// A tensor over memory owned elsewhere (a view of a mapped weight file): not accounted, and
    /// <see cref="Dispose"/> does not free it. The owner keeps the memory valid, and readable for
    /// <see cref="NativeAllocator.OverAllocationBytes"/> past the end, while the tensor is used.
    /// </summary>
    internal static unsafe Tensor Wrap(ElementType type, ReadOnlySpan<int> shape, void* data, Quantization? quantization = null)
    {
        var count = checked((int)Shapes.ElementCount(shape));
        IDisposable buffer = type switch
        {
            ElementType.Float32 => NativeBuffer<float>.Wrap((float*)data, count),
            ElementType.Float16 => NativeBuffer<Half>.Wrap((Half*)data, count),
            ElementType.Int64 => NativeBuffer<long>.Wrap((long*)data, count),
            ElementType.Int32 => NativeBuffer<int>.Wrap((int*)data, count),
            _ => NativeBuffer<byte>.Wrap((byte*)data, count),
        };
        return new Tensor(type, shape.ToArray(), buffer, quantization);
    }

    /// <summary>Allocates a tensor holding a copy of <paramref name="values"/>.</summary>
    public static Tensor From<T>(ReadOnlySpan<T> values, ReadOnlySpan<int> shape, NativeAllocator? allocator = null)
        where T : unmanaged
    {
        var tensor = Allocate(ElementTypes.Of<T>(), shape, allocator);
        if (values.Length != tensor.ElementCount)
        {
            tensor.Dispose();
            throw new ArgumentException($"{values.Length} values do not fill shape [{string.Join(',', shape.ToArray())}].", nameof(values));
        }
        values.CopyTo(tensor.Span<T>());
        return tensor;
    }

    /// <summary>
    /// A tensor of <paramref name="shape"/> (the same element count) over this one's memory: an operation's output written
    /// over an input that dies with it. Only one of the two may be disposed.
    /// </summary>
    internal Tensor Reshaped(ReadOnlySpan<int> shape)
    {
        if (Shapes.ElementCount(shape) != ElementCount)
            throw new ArgumentException($"{this} cannot be viewed as [{string.Join(',', shape.ToArray())}].", nameof(shape));
        return new Tensor(ElementType, shape.ToArray(), _buffer, Quantization);
    }

    /// <summary>The element type.</summary>
    public ElementType ElementType { get; }

    /// <summary>The dimensions (empty for a scalar).</summary>
    public int[] Shape { get; }

    /// <summary>uint8 tensors only: how the bytes map to real values.</summary>
    public Quantization? Quantization { get; }

    /// <summary>Number of elements.</summary>
    public int ElementCount => checked((int)Shapes.ElementCount(Shape));

    /// <summary>Bytes of element data.</summary>
    public long ByteCount => (long)ElementCount * ElementType.Size();

    /// <summary>The native buffer, typed; <typeparamref name="T"/> must match <see cref="ElementType"/> (byte for bool).</summary>
    public NativeBuffer<T> Buffer<T>() where T : unmanaged
    {
        // bool elements are bytes.
        var matches = ElementType == ElementType.Bool ? typeof(T) == typeof(byte) : ElementTypes.Of<T>() == ElementType;
        if (!matches)
            throw new InvalidOperationException($"The tensor holds {ElementType}, not {typeof(T).Name}.");
        return (NativeBuffer<T>)_buffer;
    }

    /// <summary>The elements.</summary>
    public Span<T> Span<T>() where T : unmanaged => Buffer<T>().Span;

    /// <summary>The raw bytes of the elements (see <see cref="BytesOf"/> for a tensor of more than 2 GiB).</summary>
    public Span<byte> Bytes => BytesOf(0, ElementCount);

    /// <summary>
    /// The raw bytes of <paramref name="count"/> elements from element <paramref name="start"/>: a tensor of more than 2 GiB
    /// has no single <see cref="Bytes"/> span, but any slice of at most 2 GiB.
    /// </summary>
    public Span<byte> BytesOf(int start, int count) => ElementType switch
    {
        ElementType.Float32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Span<float>().Slice(start, count)),
        ElementType.Float16 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Span<Half>().Slice(start, count)),
        ElementType.Int64 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Span<long>().Slice(start, count)),
        ElementType.Int32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Span<int>().Slice(start, count)),
        _ => ((NativeBuffer<byte>)_buffer).Span.Slice(start, count),
    };

    /// <inheritdoc />
    public override string ToString() => $"{ElementType}[{string.Join(',', Shape)}]";

    /// <summary>Frees the elements.</summary>
    public void Dispose() => _buffer.Dispose();
}
