namespace OnnxStream.Runtime;

/// <summary>How weights reach the operations.</summary>
public enum WeightsProviderKind
{
    /// <summary>A background thread reads ahead within a small budget (the default).</summary>
    Prefetch,
    /// <summary>Read each weight when needed, free it after.</summary>
    NoCache,
    /// <summary>Keep every weight after the first run, and the native operators packed from them (later runs skip packing).</summary>
    Ram,
    /// <summary>Map each weight file once; a weight is a zero-copy view of its range (page cache, no reads, no copies).</summary>
    MemoryMapped,
}

/// <summary>The element type activations are kept in between operations, and how operations compute.</summary>
public enum Precision
{
    /// <summary>float32 activations; float16 and quantized weights are widened just before their operation.</summary>
    Float32,
    /// <summary>
    /// float16 activations (half the memory), float32 computation: float32 inputs are rounded to float16 and
    /// each operation widens what it reads and rounds what it writes. Outputs come back as float32.
    /// </summary>
    Float16Storage,
    /// <summary>
    /// float16 activations and XNNPACK's float16 kernels where it has them (convolution, matrix products,
    /// Add, Mul); other operations compute in float32 locally. Needs AVX2 (x86-64) or FP16 arithmetic (arm64):
    /// elsewhere it runs as <see cref="Float16Storage"/> (see <see cref="InferenceSession.Precision"/>).
    /// </summary>
    Float16Arithmetic,
}

/// <summary>How attention (<c>MatMul → [Mul|Div by a scalar] → [Add mask] → Softmax(last axis) → MatMul</c>) runs.</summary>
public enum AttentionMode
{
    /// <summary>As the graph says: the whole score matrix exists at once.</summary>
    Plain,
    /// <summary>
    /// Attention slicing, as the original OnnxStream: the same operations on <see cref="InferenceSessionOptions.AttentionSlices"/>
    /// blocks of query rows in turn, so one block's scores exist at a time.
    /// </summary>
    Sliced,
    /// <summary>
    /// Memory-efficient attention: keys and values in blocks with a running maximum and sum (online
    /// softmax), so each worker holds one small block of scores.
    /// </summary>
    Fused,
}

/// <summary>Whether activations are stored as quantized uint8 between operations (see <see cref="InferenceSessionOptions.ActivationQuantization"/>).</summary>
public enum ActivationQuantization
{
    /// <summary>Activations stay in the precision's float type.</summary>
    None,
    /// <summary>
    /// Each selected operation output is quantized over its own 0.1%..99.9% percentile range, widened to include 0,
    /// measured when it is produced (as the original's dynamic quantization); operations read it dequantized.
    /// </summary>
    Dynamic,
    /// <summary>
    /// W8A8: each selected operation output is quantized over its calibrated range (<see cref="InferenceSessionOptions.RangeData"/>);
    /// Conv, MatMul with a uint8 weight, Add, Sub, Mul, Sigmoid and Softmax run XNNPACK's uint8 kernels on quantized operands,
    /// other operations read their inputs dequantized.
    /// </summary>
    Static,
}

/// <summary>Options of an <see cref="InferenceSession"/> (bind with Microsoft.Extensions.Options).</summary>
public sealed class InferenceSessionOptions
{
    /// <summary>Threads for native and managed kernels (default: the processor count).</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>How weights are supplied.</summary>
    public WeightsProviderKind WeightsProvider { get; set; } = WeightsProviderKind.Prefetch;

    /// <summary>
    /// Creates the weights provider instead of <see cref="WeightsProvider"/> when set (for example an
    /// <see cref="Weights.HttpRangeWeightsProvider"/>): called once per session, which initializes the
    /// provider it returns and disposes it with itself.
    /// </summary>
    public Func<Weights.IWeightsProvider>? CustomWeightsProvider { get; set; }

    /// <summary>Read-ahead budget of the prefetching provider, in bytes.</summary>
    public long PrefetchBudgetBytes { get; set; } = 1 << 20;

    /// <summary>
    /// The prefetching provider reads the next weight ahead only while the weights held at once (those of the current
    /// operation and those read ahead) stay within this many bytes with it, or when none are held (default 32 MiB):
    /// a large weight is not read ahead while another is in use.
    /// </summary>
    public long PrefetchHoldBytes { get; set; } = 32 << 20;

    /// <summary>The default <see cref="WeightSliceBytes"/>: 8 MiB (4 MiB took 1.5× the time of a streaming SD 1.5 UNet run, 12.8 vs 8.6 s, for 13.5 MiB less at the peak).</summary>
    public const long DefaultWeightSliceBytes = 8 << 20;

    /// <summary>
    /// When weights are not kept between runs (every provider but Ram): the most bytes of one weight that an operation
    /// converts to its compute type and packs at once (blocks packed on several threads at once share it). Conv packs a
    /// larger kernel in blocks of output channels, each written in place into the output, so a 118 MB float32 kernel costs
    /// a few MB at a time. Much smaller blocks cost speed.
    /// </summary>
    public long WeightSliceBytes { get; set; } = DefaultWeightSliceBytes;

    /// <summary>
    /// The most bytes one tensor may take (default <see cref="Memory.TensorLimit.DefaultMaxBytes"/>: half of the physical memory,
    /// or of the container's limit when lower). A model whose known shapes need a larger activation is refused when the session
    /// is created, one found larger at run time when its operation allocates it: an error naming the node, the tensor and the
    /// size, before any memory is allocated for it.
    /// </summary>
    public long MaxTensorBytes { get; set; } = Memory.TensorLimit.DefaultMaxBytes;

    /// <summary>The precision of activations and arithmetic (default float32).</summary>
    public Precision Precision { get; set; } = Precision.Float32;

    /// <summary>Record a per-operation trace (name, type, milliseconds, live bytes) in each run result.</summary>
    public bool Trace { get; set; }

    /// <summary>
    /// Called right after each operation, on the running thread, with its trace entry (as <see cref="Trace"/> records it),
    /// e.g. to print operations as they run. Null (the default) costs nothing.
    /// </summary>
    public Action<OperationTrace>? OperationCompleted { get; set; }

    /// <summary>
    /// How attention subgraphs run. <see cref="AttentionMode.Sliced"/> and <see cref="AttentionMode.Fused"/> replace each
    /// one by a single operation, so their intermediate tensors (the scores) cannot be asked for as extra outputs.
    /// </summary>
    public AttentionMode Attention { get; set; } = AttentionMode.Plain;

    /// <summary>
    /// Replace each GEGLU projection of a feed-forward block (<c>MatMul → Add bias → two halves → h · GELU(g)</c>, as
    /// diffusers exports it) by one operation computed a block of rows at a time, so that the projection (twice the
    /// result's size) never exists whole (default true; not under <see cref="ActivationQuantization"/>, whose ranges name the
    /// exported nodes). Its intermediate tensors cannot then be asked for as extra outputs.
    /// </summary>
    public bool FuseGeglu { get; set; } = true;

    /// <summary>
    /// Replace each group normalization as exported before opset 18 (<c>Reshape → InstanceNormalization → Reshape → Mul →
    /// Add</c>) and the SiLU after it (<c>Mul(y, Sigmoid(y))</c>) by one operation that writes its output once, over its input
    /// when nothing else reads it (default true; not under <see cref="ActivationQuantization"/>, whose ranges name the exported
    /// nodes). Saves up to two activations of the input's size at each resnet; its intermediate tensors cannot then be asked
    /// for as extra outputs.
    /// </summary>
    public bool FuseGroupNorm { get; set; } = true;

    /// <summary>
    /// Replace each layer normalization over the last axis as exported before opset 17 (<c>ReduceMean → Sub → Pow → ReduceMean
    /// → Add ε → Sqrt → Div → Mul γ → Add β</c>) by one LayerNormalization operation (default true; not under
    /// <see cref="ActivationQuantization"/>, whose ranges name the exported nodes): one activation of the input's size instead
    /// of three, one operation instead of nine. Its intermediate tensors cannot then be asked for as extra outputs.
    /// </summary>
    public bool FuseLayerNorm { get; set; } = true;

    /// <summary>Blocks of query rows of <see cref="AttentionMode.Sliced"/> attention (default 2, as the original).</summary>
    public int AttentionSlices { get; set; } = 2;

    /// <summary>
    /// Store activations as quantized uint8 (default none). Needs <see cref="Runtime.Precision.Float32"/>. Graph
    /// outputs and requested extra outputs are never quantized.
    /// </summary>
    public ActivationQuantization ActivationQuantization { get; set; } = ActivationQuantization.None;

    /// <summary>
    /// The operation outputs to quantize, by node name or output tensor name; null: every float32 output of a
    /// single-output operation (for <see cref="ActivationQuantization.Static"/>, every one with a range). The
    /// original's SDXL UNet quantizes only a chosen set of its largest intermediates.
    /// </summary>
    public ISet<string>? QuantizedTensors { get; set; }

    /// <summary>
    /// The calibrated ranges of <see cref="ActivationQuantization.Static"/>. When null, <see cref="RangeDataPath"/> is
    /// read, or else the model folder's <c>range_data.txt</c>.
    /// </summary>
    public RangeData? RangeData { get; set; }

    /// <summary>A range_data.txt for <see cref="ActivationQuantization.Static"/>, read when <see cref="RangeData"/> is null.</summary>
    public string? RangeDataPath { get; set; }

    /// <summary>
    /// Let the model read files outside its folder (default false): <see cref="Graph.ModelLoadOptions.AllowWeightsOutsideModelFolder"/>
    /// where the session or <see cref="Calibrator"/> loads the model from a path, and the model folder's <c>range_data.txt</c>
    /// (when neither <see cref="RangeData"/> nor <see cref="RangeDataPath"/> is set) may be a link that leads out of it.
    /// </summary>
    public bool AllowWeightsOutsideModelFolder { get; set; }

    /// <summary>
    /// Check each float32 and float16 output of each operation as it is produced (one vectorized read of it) and stop the run
    /// with a <see cref="NonFiniteValueException"/> naming the model, the operation, the tensor and the element at the first
    /// NaN or infinity (default false; quantized uint8 outputs hold neither). Models that compute with infinities on purpose
    /// (e.g. an attention mask of −∞) fail it.
    /// </summary>
    public bool CheckFinite { get; set; }
}
