using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Weights;

/// <summary>
/// During a run, a background thread reads weights in request order ahead of the operations, holding
/// at most <see cref="BudgetBytes"/> of read-ahead plus one file, so disk reads overlap compute while
/// memory stays near the size of the current operation's weights. It reads the next file only while the
/// weights held (acquired and not yet released, and read ahead) stay within <see cref="HoldBytes"/> with it,
/// when none are held, or when an operation waits for it: a large weight is not read ahead beside another.
/// Between runs it holds nothing.
/// </summary>
public sealed class DiskPrefetchWeightsProvider : IWeightsProvider
{
    private readonly object _gate = new();
    private readonly Queue<(TensorDescriptor Weight, Tensor Tensor)> _ready = new();
    private IReadOnlyList<TensorDescriptor> _order = [];
    private NativeAllocator _allocator = NativeAllocator.Shared;
    private Thread? _reader;
    private long _readyBytes;
    private long _acquiredBytes;
    private bool _waiting;
    private bool _reading;
    private int _nextToRead;
    private int _generation;
    private bool _stopping;
    private bool _running;
    private Exception? _readError;

    /// <summary>
    /// Creates the provider with a read-ahead budget (default 1 MiB, as the original) and a limit on the weights held
    /// at once (default 32 MiB).
    /// </summary>
    public DiskPrefetchWeightsProvider(long budgetBytes = 1 << 20, long holdBytes = 32 << 20)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budgetBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(holdBytes);
        BudgetBytes = budgetBytes;
        HoldBytes = holdBytes;
    }

    /// <summary>Bytes of weights read ahead, beyond which the reader waits (it may exceed it by one file).</summary>
    public long BudgetBytes { get; }

    /// <summary>
    /// Bytes of weights held at once (acquired and read ahead) beyond which the reader does not read the next file,
    /// unless nothing is held.
    /// </summary>
    public long HoldBytes { get; }

    /// <inheritdoc />
    public void Initialize(IReadOnlyList<TensorDescriptor> requestOrder, NativeAllocator allocator)
    {
        _order = requestOrder;
        _allocator = allocator;
        _reader = new Thread(ReadAhead) { IsBackground = true, Name = "OnnxStream weight prefetch" };
        _reader.Start();
    }

    /// <inheritdoc />
    public Tensor Acquire(TensorDescriptor weight, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            while (_ready.Count == 0)
            {
                if (_readError is { } error)
                    throw new IOException($"Reading weight '{weight.Name}' ahead failed: {error.Message}", error);
                if (_reader is null) throw new InvalidOperationException("The provider is not initialized.");
                cancellationToken.ThrowIfCancellationRequested();
                // An operation waiting for its next weight gets it whatever it already holds.
                _waiting = true;
                Monitor.PulseAll(_gate);
                Monitor.Wait(_gate, 50);
            }
            _waiting = false;
            var (next, tensor) = _ready.Dequeue();
            _readyBytes -= tensor.ByteCount;
            _acquiredBytes += tensor.ByteCount;
            Monitor.PulseAll(_gate);
            if (next.Name != weight.Name)
            {
                _acquiredBytes -= tensor.ByteCount;
                tensor.Dispose();
                throw new InvalidOperationException($"Weight '{weight.Name}' was asked for out of the declared order (expected '{next.Name}').");
            }
            return tensor;
        }
    }

    /// <inheritdoc />
    public void Release(TensorDescriptor weight, Tensor tensor)
    {
        lock (_gate)
        {
            _acquiredBytes -= tensor.ByteCount;
            Monitor.PulseAll(_gate);
        }
        tensor.Dispose();
    }

    /// <inheritdoc />
    public void BeginRun()
    {
        lock (_gate)
        {
            _running = true;
            Monitor.PulseAll(_gate);
        }
    }

    /// <inheritdoc />
    public void EndRun()
    {
        lock (_gate)
        {
            _running = false;
            _waiting = false;
            // A read in flight finishes first, so that nothing of this run is held once it has ended.
            while (_reading) Monitor.Wait(_gate);
            DropReady();
            _generation++;
            _nextToRead = 0;
            _readError = null;
            Monitor.PulseAll(_gate);
        }
    }

    private void ReadAhead()
    {
        while (true)
        {
            TensorDescriptor weight;
            int generation;
            lock (_gate)
            {
                // The budget may be exceeded by one file: with nothing ready, the next file is read, if it fits the hold
                // limit beside the weights the operation holds (or if it holds none).
                while (!_stopping && (!_running || _nextToRead >= _order.Count || (_ready.Count > 0 && _readyBytes >= BudgetBytes) ||
                                      ExceedsHold(_order[_nextToRead]) || _readError is not null))
                    Monitor.Wait(_gate);
                if (_stopping) return;
                weight = _order[_nextToRead++];
                generation = _generation;
                _reading = true;
            }
            Tensor? tensor = null;
            Exception? error = null;
            try
            {
                tensor = WeightFileReader.Read(weight, _allocator);
            }
            catch (Exception e)
            {
                error = e;
            }
            lock (_gate)
            {
                _reading = false;
                if (generation != _generation || _stopping || !_running)
                    tensor?.Dispose();
                else if (tensor is not null)
                {
                    _ready.Enqueue((weight, tensor));
                    _readyBytes += tensor.ByteCount;
                }
                else
                    _readError = error;
                Monitor.PulseAll(_gate);
            }
        }
    }

    /// <summary>Whether reading <paramref name="next"/> now would hold more than <see cref="HoldBytes"/> (the caller holds the gate).</summary>
    private bool ExceedsHold(TensorDescriptor next)
    {
        var held = _acquiredBytes + _readyBytes;
        return !_waiting && held > 0 && held + (next.Location?.Length ?? 0) > HoldBytes;
    }

    private void DropReady()
    {
        while (_ready.TryDequeue(out var item)) item.Tensor.Dispose();
        _readyBytes = 0;
    }

    /// <summary>Stops the reader and frees what it read ahead.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }
        _reader?.Join();
        lock (_gate) DropReady();
    }
}
