using OnnxStream.Runtime;

namespace OnnxStream.Cli.Bench;

/// <summary>The engines <c>onnxstream bench</c> compares.</summary>
internal enum BenchEngine
{
    /// <summary>This engine.</summary>
    OnnxStream,
    /// <summary>ONNX Runtime's CPU execution provider.</summary>
    Ort,
}

/// <summary>
/// One configuration to measure: an engine and its mode. This engine's modes are
/// <c>PROVIDER[/PRECISION][/ATTENTION][/QUANTIZATION]</c> (e.g. <c>prefetch/fp16/fused</c>,
/// <c>nocache/fp32/plain/u8-static</c>: uint8 activations, static from the folder's range_data.txt or
/// dynamic); ONNX Runtime's are
/// <c>default</c> (default session options) and <c>lean</c> (arena off, memory pattern off, sequential).
/// </summary>
internal sealed record BenchMode(BenchEngine Engine, string Name)
{
    private static readonly string[] Providers = ["prefetch", "nocache", "ram", "mmap"];
    private static readonly string[] Precisions = ["fp32", "fp16-storage", "fp16"];
    private static readonly string[] Attentions = ["plain", "sliced", "fused"];
    private static readonly string[] Quantizations = ["u8-dynamic", "u8-static"];

    /// <summary>ONNX Runtime's modes.</summary>
    public static IReadOnlyList<string> OrtModes { get; } = ["default", "lean"];

    /// <summary>This engine's modes measured when none is named: each provider streaming with fused attention, then the precision and attention variants.</summary>
    public static IReadOnlyList<string> DefaultOnnxStreamModes { get; } =
        ["prefetch/fp32/fused", "nocache/fp32/fused", "mmap/fp32/fused", "ram/fp32/fused", "prefetch/fp16/fused", "prefetch/fp32/sliced", "prefetch/fp32/plain"];

    /// <summary>The engine's name on the command line and in reports.</summary>
    public string EngineName => NameOf(Engine);

    /// <summary>"engine:mode", the configuration's label.</summary>
    public string Label => $"{EngineName}:{Name}";

    /// <summary>The engine named <paramref name="name"/> (onnxstream or ort).</summary>
    public static BenchEngine ParseEngine(string name) => name switch
    {
        "onnxstream" => BenchEngine.OnnxStream,
        "ort" => BenchEngine.Ort,
        _ => throw new ArgumentException($"Unknown engine '{name}': expected onnxstream or ort."),
    };

    /// <summary>The command-line name of <paramref name="engine"/>.</summary>
    public static string NameOf(BenchEngine engine) => engine == BenchEngine.Ort ? "ort" : "onnxstream";

    /// <summary>
    /// Parses <paramref name="text"/> as a mode of <paramref name="engine"/>; this engine's modes are normalized to
    /// <c>provider/precision/attention</c> (defaults prefetch, fp32, plain) so that equal modes get equal names.
    /// </summary>
    /// <exception cref="ArgumentException">Not a mode of that engine.</exception>
    public static BenchMode Parse(BenchEngine engine, string text)
    {
        if (!TryParse(engine, text, out var mode))
            throw new ArgumentException(engine == BenchEngine.Ort
                ? $"'{text}' is not an ONNX Runtime mode: expected {string.Join(" or ", OrtModes)}."
                : $"'{text}' is not an onnxstream mode: expected PROVIDER[/PRECISION][/ATTENTION] with a provider among {string.Join(", ", Providers)}, " +
                  $"a precision among {string.Join(", ", Precisions)}, an attention among {string.Join(", ", Attentions)} " +
                  $"and optionally a quantization among {string.Join(", ", Quantizations)}.");
        return mode;
    }

    /// <summary>Parses <paramref name="text"/> as a mode of <paramref name="engine"/>, or says it is not one.</summary>
    public static bool TryParse(BenchEngine engine, string text, out BenchMode mode)
    {
        mode = null!;
        if (engine == BenchEngine.Ort)
        {
            if (!OrtModes.Contains(text)) return false;
            mode = new BenchMode(engine, text);
            return true;
        }
        string? provider = null, precision = null, attention = null, quantization = null;
        foreach (var part in text.Split('/'))
        {
            if (Providers.Contains(part) && provider is null) provider = part;
            else if (Precisions.Contains(part) && precision is null) precision = part;
            else if (Attentions.Contains(part) && attention is null) attention = part;
            else if (Quantizations.Contains(part) && quantization is null) quantization = part;
            else return false;
        }
        mode = new BenchMode(engine, $"{provider ?? "prefetch"}/{precision ?? "fp32"}/{attention ?? "plain"}{(quantization is null ? "" : "/" + quantization)}");
        return true;
    }

    /// <summary>The session options of this engine's mode.</summary>
    public InferenceSessionOptions ToSessionOptions(int threads)
    {
        if (Engine != BenchEngine.OnnxStream) throw new InvalidOperationException($"{Label} is not an onnxstream mode.");
        var parts = Name.Split('/');
        return new InferenceSessionOptions
        {
            Threads = threads,
            WeightsProvider = parts[0] switch
            {
                "nocache" => WeightsProviderKind.NoCache, "ram" => WeightsProviderKind.Ram,
                "mmap" => WeightsProviderKind.MemoryMapped, _ => WeightsProviderKind.Prefetch,
            },
            Precision = parts[1] switch { "fp16" => Precision.Float16Arithmetic, "fp16-storage" => Precision.Float16Storage, _ => Precision.Float32 },
            Attention = parts[2] switch { "sliced" => AttentionMode.Sliced, "fused" => AttentionMode.Fused, _ => AttentionMode.Plain },
            ActivationQuantization = parts.Length < 4 ? ActivationQuantization.None
                : parts[3] == "u8-static" ? ActivationQuantization.Static : ActivationQuantization.Dynamic,
        };
    }

    /// <summary>
    /// The configurations of a bench: each <paramref name="modes"/> entry goes to the engines it parses for
    /// (an entry may be prefixed <c>engine:</c>); engines with no named mode get their defaults.
    /// </summary>
    /// <exception cref="ArgumentException">A mode that no selected engine has.</exception>
    public static IReadOnlyList<BenchMode> Select(IReadOnlyCollection<BenchEngine> engines, IReadOnlyList<string> modes)
    {
        var selected = new List<BenchMode>();
        foreach (var text in modes)
        {
            var colon = text.IndexOf(':');
            var candidates = colon > 0 ? [ParseEngine(text[..colon])] : engines;
            var body = colon > 0 ? text[(colon + 1)..] : text;
            var matched = candidates.Where(e => engines.Contains(e)).Select(e => TryParse(e, body, out var m) ? m : null).OfType<BenchMode>().ToList();
            if (matched.Count == 0)
                throw new ArgumentException($"--mode '{text}' is not a mode of {string.Join(" or ", engines.Select(NameOf))}: " +
                                            "onnxstream modes are PROVIDER[/PRECISION][/ATTENTION] (e.g. prefetch/fp16/fused), ort modes default or lean.");
            selected.AddRange(matched.Where(m => !selected.Contains(m)));
        }
        foreach (var engine in engines.Where(e => selected.All(m => m.Engine != e)))
            selected.AddRange((engine == BenchEngine.Ort ? OrtModes : DefaultOnnxStreamModes).Select(m => Parse(engine, m)));
        return selected;
    }
}
