using System.IO.MemoryMappedFiles;
using OnnxStream.Graph;
using OnnxStream.Interop;
using OnnxStream.Kernels;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Weights;

/// <summary>
/// Zero-copy weights: each weight file (a model folder's .bin files, or one .onnx or external data file
/// holding many weights as ranges) is mapped whole, once, on first use and kept until
/// <see cref="Dispose"/>; a weight is a tensor over its range of the mapping, nothing is read or copied.
/// The mapping is copy-on-write, so nothing can write through to the file. Tracked bytes do not include
/// mapped pages: they are page cache the kernel can drop and read again (the process's resident size
/// counts the pages it has touched).
/// </summary>
/// <remarks>
/// A weight whose range ends so close to the end of its file's last page that XNNPACK's reads past the
/// end (<see cref="NativeAllocator.OverAllocationBytes"/>) would leave the mapping is copied instead
/// (rare: it needs the file's size within 16 bytes of a multiple of the page size). Before each weight
/// is handed out the file's current length is checked against its range, so a file truncated after it
/// was mapped fails the run (a <see cref="ModelFormatException"/> naming the file). A file truncated while
/// an operation reads it would fault (SIGBUS, which ends the process): each mapping is registered with the
/// native shim's guard (<c>osn_mapping_guard_add</c>), whose SIGBUS handler maps zero pages over the part
/// past the new end and counts the fault, and <see cref="Release"/> then fails the operation with an
/// <see cref="IOException"/> naming the file. Do not rewrite model files while a session uses them.
/// </remarks>
public sealed unsafe class MemoryMappedWeightsProvider : IWeightsProvider
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Mapping> _mappings = new(StringComparer.Ordinal);
    private readonly List<Mapping> _retired = [];
    private NativeAllocator _allocator = NativeAllocator.Shared;
    private bool _disposed;

    /// <summary>Files mapped now (one per distinct weight file used so far).</summary>
    public int MappedFiles
    {
        get
        {
            lock (_gate) return _mappings.Count;
        }
    }

    /// <inheritdoc />
    public void Initialize(IReadOnlyList<TensorDescriptor> requestOrder, NativeAllocator allocator) => _allocator = allocator;

    /// <inheritdoc />
    public Tensor Acquire(TensorDescriptor weight, CancellationToken cancellationToken)
    {
        var location = weight.Location ?? throw new ArgumentException($"'{weight.Name}' is not a weight.", nameof(weight));
        if (location.Inline is not null) return WeightFileReader.Read(weight, _allocator);
        cancellationToken.ThrowIfCancellationRequested();
        var type = weight.WeightType!.Value;
        if (location.Length == 0 && Shapes.ElementCount(weight.Shape) == 0)
            return Tensor.Allocate(type, weight.Shape, _allocator, weight.Quantization);
        var expected = Shapes.ElementCount(weight.Shape) * type.Size();
        if (expected != location.Length)
            throw new ModelFormatException($"weight '{weight.Name}': {location.Length} bytes in {location.Path} do not fill {type}[{string.Join(',', weight.Shape)}]");
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var end = location.Offset + location.Length;
            var mapping = MappingFor(location.Path, end);
            var fileLength = RandomAccess.GetLength(mapping.File.SafeFileHandle);
            if (location.Offset < 0 || end > fileLength)
                throw new ModelFormatException(
                    $"weight file {location.Path} ended after {Math.Max(0, fileLength - location.Offset)} of {location.Length} bytes of '{weight.Name}' (truncated?)");
            var data = mapping.Pointer + location.Offset;
            if (end + NativeAllocator.OverAllocationBytes <= mapping.ReadableBytes)
                return Tensor.Wrap(type, weight.Shape, data, weight.Quantization);
            var copy = Tensor.Allocate(type, weight.Shape, _allocator, weight.Quantization);
            try
            {
                new ReadOnlySpan<byte>(data, (int)location.Length).CopyTo(copy.Bytes);
                mapping.ThrowIfFaulted(weight);
            }
            catch
            {
                copy.Dispose();
                throw;
            }
            return copy;
        }
    }

    /// <summary>
    /// The mapping of <paramref name="path"/>, mapped anew if the file has grown past it since it was mapped, or if it faulted
    /// (its file was truncated under it: the mapping reads zeros there now).
    /// </summary>
    private Mapping MappingFor(string path, long end)
    {
        var key = Path.GetFullPath(path);
        if (_mappings.TryGetValue(key, out var mapping))
        {
            if (end <= mapping.Capacity && !mapping.Faulted) return mapping;
            // Tensors over the old mapping may still be in use by this operation: keep it until Dispose.
            _mappings.Remove(key);
            _retired.Add(mapping);
        }
        var stream = new FileStream(key, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 0);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            var length = RandomAccess.GetLength(stream.SafeFileHandle);
            if (length == 0 || end > length)
                throw new ModelFormatException($"weight file {path} has {length} bytes, fewer than the {end} its weights need (truncated?)");
            map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.CopyOnWrite,
                HandleInheritability.None, leaveOpen: true);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.CopyOnWrite);
            mapping = new Mapping(key, stream, map, view, length);
        }
        catch
        {
            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw;
        }
        _mappings[key] = mapping;
        return mapping;
    }

    /// <summary>
    /// Disposes <paramref name="tensor"/>; throws when its file was truncated while the operation read it (it read zeros past
    /// the file's new end).
    /// </summary>
    /// <exception cref="IOException">The weight's file shrank while mapped; the message names it.</exception>
    public void Release(TensorDescriptor weight, Tensor tensor)
    {
        tensor.Dispose();
        if (weight.Location is not { Inline: null } location) return;
        lock (_gate)
        {
            if (!_disposed && _mappings.TryGetValue(Path.GetFullPath(location.Path), out var mapping)) mapping.ThrowIfFaulted(weight);
        }
    }

    /// <inheritdoc />
    public void BeginRun() { }

    /// <inheritdoc />
    public void EndRun() { }

    /// <summary>Unmaps and closes every file: no tensor this provider handed out may be used after this.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var mapping in _mappings.Values.Concat(_retired)) mapping.Dispose();
            _mappings.Clear();
            _retired.Clear();
        }
    }

    /// <summary>A file mapped whole, with its view's address held until disposed.</summary>
    private sealed class Mapping : IDisposable
    {
        private readonly MemoryMappedFile _map;
        private readonly MemoryMappedViewAccessor _view;

        private readonly int _guard;

        public Mapping(string path, FileStream file, MemoryMappedFile map, MemoryMappedViewAccessor view, long capacity)
        {
            Path = path;
            File = file;
            _map = map;
            _view = view;
            Capacity = capacity;
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            Pointer = pointer + view.PointerOffset;
            // The last page is mapped whole: bytes past the file's end up to the page's end read as zero.
            ReadableBytes = (capacity + Environment.SystemPageSize - 1) / Environment.SystemPageSize * Environment.SystemPageSize;
            int guard;
            var status = NativeMethods.osn_mapping_guard_add(Pointer, (nuint)ReadableBytes, &guard);
            if (status != 0) view.SafeMemoryMappedViewHandle.ReleasePointer();
            NativeStatus.Check(status);
            _guard = guard;
        }

        public string Path { get; }

        public FileStream File { get; }

        /// <summary>The file's length when it was mapped.</summary>
        public long Capacity { get; }

        /// <summary>Bytes from <see cref="Pointer"/> that can be read without a fault.</summary>
        public long ReadableBytes { get; }

        /// <summary>The file's first byte.</summary>
        public byte* Pointer { get; }

        /// <summary>Whether a read of this mapping faulted (its file was truncated under it).</summary>
        public bool Faulted
        {
            get
            {
                long faults;
                NativeStatus.Check(NativeMethods.osn_mapping_guard_faults(_guard, &faults));
                return faults != 0;
            }
        }

        /// <summary>Throws if a read of this mapping faulted (its file was truncated under it).</summary>
        public void ThrowIfFaulted(TensorDescriptor weight)
        {
            if (!Faulted) return;
            var now = System.IO.File.Exists(Path) ? $"{new FileInfo(Path).Length} bytes" : "deleted";
            throw new IOException($"weight file {Path} shrank while mapped ({Capacity} bytes when mapped, now {now}): '{weight.Name}' read zeros past its end. " +
                                  "Do not rewrite model files while a session uses them.");
        }

        public void Dispose()
        {
            NativeStatus.Check(NativeMethods.osn_mapping_guard_remove(_guard));
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _map.Dispose();
            File.Dispose();
        }
    }
}
