using System.IO.MemoryMappedFiles;
using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Weights;

/// <summary>
/// Reads weights through memory mappings of their files (a model folder's .bin files, or ranges of one
/// .onnx or external data file): one read-only mapping per distinct file, opened on first use and kept
/// until <see cref="Dispose"/>. Each weight is copied from a view of just its range into a new native
/// tensor, freed at <see cref="Release"/>: the bytes come from the page cache without read system
/// calls, and the view is unmapped right after the copy, so the process does not keep the file's pages
/// mapped (its resident size stays that of the tensors it holds, as with
/// <see cref="DiskNoCacheWeightsProvider"/>).
/// </summary>
/// <remarks>
/// Before each copy the file's current length is checked against the weight's range, so a file
/// truncated after it was mapped fails the run (a <see cref="ModelFormatException"/> naming the file)
/// instead of faulting on pages past its end. A file truncated by another process during the copy
/// itself still faults: do not rewrite model files while a session uses them.
/// </remarks>
public sealed unsafe class MemoryMappedWeightsProvider : IWeightsProvider
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Mapping> _mappings = new(StringComparer.Ordinal);
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
        var tensor = Tensor.Allocate(weight.WeightType!.Value, weight.Shape, _allocator, weight.Quantization);
        try
        {
            var target = tensor.Bytes;
            if (target.Length != location.Length)
                throw new ModelFormatException($"weight '{weight.Name}': {location.Length} bytes in {location.Path} do not fill {tensor}");
            if (target.Length > 0) CopyRange(weight, location, target);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    private void CopyRange(TensorDescriptor weight, WeightLocation location, Span<byte> target)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var end = location.Offset + location.Length;
            var mapping = MappingFor(location.Path, end);
            var fileLength = RandomAccess.GetLength(mapping.File.SafeFileHandle);
            if (location.Offset < 0 || end > fileLength)
                throw new ModelFormatException(
                    $"weight file {location.Path} ended after {Math.Max(0, fileLength - location.Offset)} of {location.Length} bytes of '{weight.Name}' (truncated?)");
            // A view of just the range (the runtime aligns its start to a page): unmapped right after the copy.
            using var view = mapping.Map.CreateViewAccessor(location.Offset, location.Length, MemoryMappedFileAccess.Read);
            var handle = view.SafeMemoryMappedViewHandle;
            byte* pointer = null;
            handle.AcquirePointer(ref pointer);
            try
            {
                new ReadOnlySpan<byte>(pointer + view.PointerOffset, target.Length).CopyTo(target);
            }
            finally
            {
                handle.ReleasePointer();
            }
        }
    }

    /// <summary>The mapping of <paramref name="path"/>, mapped anew if the file has grown past it since it was mapped.</summary>
    private Mapping MappingFor(string path, long end)
    {
        var key = Path.GetFullPath(path);
        if (_mappings.TryGetValue(key, out var mapping))
        {
            if (end <= mapping.Capacity) return mapping;
            _mappings.Remove(key);
            mapping.Dispose();
        }
        var stream = new FileStream(key, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 0);
        try
        {
            var length = RandomAccess.GetLength(stream.SafeFileHandle);
            if (length == 0 || end > length)
                throw new ModelFormatException($"weight file {path} has {length} bytes, fewer than the {end} its weights need (truncated?)");
            var map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                HandleInheritability.None, leaveOpen: true);
            mapping = new Mapping(stream, map, length);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        _mappings[key] = mapping;
        return mapping;
    }

    /// <inheritdoc />
    public void Release(TensorDescriptor weight, Tensor tensor) => tensor.Dispose();

    /// <inheritdoc />
    public void BeginRun() { }

    /// <inheritdoc />
    public void EndRun() { }

    /// <summary>Unmaps and closes every file.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var mapping in _mappings.Values) mapping.Dispose();
            _mappings.Clear();
        }
    }

    private sealed record Mapping(FileStream File, MemoryMappedFile Map, long Capacity) : IDisposable
    {
        public void Dispose()
        {
            Map.Dispose();
            File.Dispose();
        }
    }
}
