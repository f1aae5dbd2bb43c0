using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Weights;

/// <summary>
/// During a run, a background thread reads weights in request order ahead of the operations, holding
/// at most <see cref="BudgetBytes"/> of read-ahead plus one file, so disk reads overlap compute while
/// memory stays near the size of the current operation's weights. Between runs it holds nothing.
/// </summary>
public sealed class DiskPrefetchWeightsProvider : IWeightsProvider
{
    private readonly object _gate = new();
    private readonly Queue<(TensorDescriptor Weight, Tensor Tensor)> _ready = new();
    private IReadOnlyList<TensorDescriptor> _order = [];
    private NativeAllocator _allocator = NativeAllocator.Shared;
    private Thread? _reader;
    private long _readyBytes;
    private int _nextToRead;
    private int _generation;
    private bool _stopping;
    private bool _running;
    private Exception? _readError;

    /// <summary>Creates the provider with a read-ahead budget (default 1 MiB, as the original).</summary>
    public DiskPrefetchWeightsProvider(long budgetBytes = 1 << 20)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budgetBytes);
        BudgetBytes = budgetBytes;
    }

    /// <summary>Bytes of weights read ahead, beyond which the reader waits (it may exceed it by one file).</summary>
    public long BudgetBytes { get; }

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
                Monitor.Wait(_gate, 50);
            }
            var (next, tensor) = _ready.Dequeue();
            _readyBytes -= tensor.ByteCount;
            Monitor.PulseAll(_gate);
            if (next.Name != weight.Name)
            {
                tensor.Dispose();
                throw new InvalidOperationException($"Weight '{weight.Name}' was asked for out of the declared order (expected '{next.Name}').");
            }
            return tensor;
        }
    }

    /// <inheritdoc />
    public void Release(TensorDescriptor weight, Tensor tensor) => tensor.Dispose();

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
                // The budget may be exceeded by one file: with nothing ready, the next file is always read.
                while (!_stopping && (!_running || _nextToRead >= _order.Count || (_ready.Count > 0 && _readyBytes >= BudgetBytes) ||
                                      _readError is not null))
                    Monitor.Wait(_gate);
                if (_stopping) return;
                weight = _order[_nextToRead++];
                generation = _generation;
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
