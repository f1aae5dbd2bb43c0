using OnnxStream.StableDiffusion.Sampling;
using OnnxStream.Tensors;

namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>
/// The UNet as the samplers' <see cref="Denoiser"/>, with classifier-free guidance: the UNet runs on x·c_in,
/// c_in = 1/√(σ²+1), at the timestep of σ; its outputs are guided, out = out_uncond + s·(out_cond − out_uncond),
/// and turned into the x₀ prediction by the schedule (x − σ·ε for ε-prediction). The two passes run one after the
/// other, or as one batch of two.
/// </summary>
internal sealed class GuidedUNet : IDisposable
{
    private readonly IComponentModel _model;
    private readonly NoiseSchedule _schedule;
    private readonly TextConditioning _cond;
    private readonly TextConditioning? _uncond;
    private readonly float _scale;
    private readonly bool _batched;
    private readonly int[] _latentShape;
    private readonly float[]? _timeIds;
    private readonly string _sample, _timestep, _hidden, _output;
    private readonly string? _textEmbeds, _timeIdsName;
    private readonly ElementType _timestepType;
    private readonly string _path;

    /// <summary>The declared sample shape, when the UNet was opened for other input shapes (another size or batch); else null.</summary>
    private readonly int[]? _declaredSample;

    /// <summary>
    /// Opens the UNet for (batch, 4, <paramref name="latentHeight"/>, <paramref name="latentWidth"/>) latents; a null size is the
    /// UNet's declared one, else <paramref name="fallbackLatentSize"/>.
    /// </summary>
    /// <param name="backend">Runs it.</param>
    /// <param name="path">The UNet.</param>
    /// <param name="schedule">σ → timestep, and the model output → x₀.</param>
    /// <param name="cond">The prompt's conditioning.</param>
    /// <param name="uncond">The negative prompt's; null runs no unconditional pass.</param>
    /// <param name="scale">The guidance scale.</param>
    /// <param name="batched">Both passes as one batch of two.</param>
    /// <param name="latentHeight">Latent rows.</param>
    /// <param name="latentWidth">Latent columns.</param>
    /// <param name="fallbackLatentSize">The latent side when neither the caller nor the UNet says.</param>
    /// <param name="timeIds">Makes SDXL's time ids (original size, crop origin, target size) from the image height and width; null for SD 1.5.</param>
    public GuidedUNet(IInferenceBackend backend, string path, NoiseSchedule schedule, TextConditioning cond, TextConditioning? uncond,
        float scale, bool batched, int? latentHeight, int? latentWidth, int fallbackLatentSize, Func<int, int, float[]>? timeIds)
    {
        _path = path;
        _schedule = schedule;
        _cond = cond;
        _uncond = uncond;
        _scale = scale;
        _batched = batched && uncond is not null;
        var batch = _batched ? 2 : 1;

        var model = backend.Open(path, ComponentRole.UNet);
        try
        {
            _sample = Find(model, path, "sample", i => i.Shape.Length == 4);
            var declaredSample = model.Inputs.First(i => i.Name == _sample).Shape;
            var height = latentHeight ?? (declaredSample[2] > 0 ? declaredSample[2] : fallbackLatentSize);
            var width = latentWidth ?? (declaredSample[3] > 0 ? declaredSample[3] : fallbackLatentSize);
            _latentShape = [1, 4, height, width];
            _timeIds = timeIds?.Invoke(8 * height, 8 * width);
            _timestep = Find(model, path, "timestep", i => i.Shape.Length <= 1);
            _hidden = Find(model, path, "encoder_hidden_states", i => i.Shape.Length == 3);
            if (cond.Pooled is not null)
            {
                _textEmbeds = Find(model, path, "text_embeds", i => i.Shape is [_, not 6]);
                _timeIdsName = Find(model, path, "time_ids", i => i.Shape is [_, 6]);
            }
            _timestepType = model.Inputs.First(i => i.Name == _timestep).ElementType ?? ElementType.Float32;
            _output = model.Outputs[0];
            var shapes = new Dictionary<string, int[]>
            {
                [_sample] = [batch, 4, height, width],
                [_hidden] = [batch, cond.Hidden.Length / cond.Width, cond.Width],
            };
            if (_textEmbeds is not null)
            {
                shapes[_textEmbeds] = [batch, cond.Pooled!.Length];
                shapes[_timeIdsName!] = [batch, _timeIds!.Length];
            }
            var declared = model.Inputs.ToDictionary(i => i.Name, i => i.Shape);
            if (shapes.Any(s => !Fits(declared[s.Key], s.Value)))
            {
                _declaredSample = declaredSample;
                model.Dispose();
                model = backend.Open(path, ComponentRole.UNet, shapes);
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
        _model = model;
    }

    /// <summary>The latent's shape, (1, 4, H/8, W/8).</summary>
    public IReadOnlyList<int> LatentShape => _latentShape;

    /// <summary>The most tracked bytes the last UNet run held.</summary>
    public long LastPeakBytes { get; private set; }

    /// <summary>Whether a declared shape (0 = any) takes <paramref name="wanted"/>.</summary>
    private static bool Fits(int[] declared, int[] wanted) =>
        declared.Length == wanted.Length && declared.Zip(wanted).All(p => p.First == 0 || p.First == p.Second);

    /// <summary>The input named <paramref name="name"/>, or else the only one <paramref name="fallback"/> accepts.</summary>
    private static string Find(IComponentModel model, string path, string name, Func<ComponentInput, bool> fallback)
    {
        if (model.Inputs.FirstOrDefault(i => i.Name == name) is { } exact) return exact.Name;
        var candidates = model.Inputs.Where(fallback).ToList();
        return candidates.Count == 1
            ? candidates[0].Name
            : throw new ArgumentException($"{path}: no UNet input '{name}' (its inputs: {string.Join(", ", model.Inputs.Select(i => i.Name))}).");
    }

    /// <summary>D(x, σ): see the class summary.</summary>
    public void Denoise(ReadOnlySpan<float> latent, double sigma, Span<float> denoised, CancellationToken cancellationToken)
    {
        var cIn = (float)NoiseSchedule.InputScale(sigma);
        var timestep = (float)_schedule.SigmaToTimestep(sigma);
        var output = new float[latent.Length];
        if (_uncond is null) Predict(latent, cIn, timestep, [_cond], output, cancellationToken);
        else if (_batched)
        {
            var both = new float[2 * latent.Length];
            Predict(latent, cIn, timestep, [_uncond, _cond], both, cancellationToken);
            Guide(both.AsSpan(0, latent.Length), both.AsSpan(latent.Length), output);
        }
        else
        {
            var uncond = new float[latent.Length];
            Predict(latent, cIn, timestep, [_uncond], uncond, cancellationToken);
            Predict(latent, cIn, timestep, [_cond], output, cancellationToken);
            Guide(uncond, output, output);
        }
        _schedule.ToDenoised(latent, output, sigma, denoised);
    }

    private void Guide(ReadOnlySpan<float> uncond, ReadOnlySpan<float> cond, Span<float> guided)
    {
        for (var i = 0; i < guided.Length; i++) guided[i] = uncond[i] + _scale * (cond[i] - uncond[i]);
    }

    /// <summary>The UNet output (ε or v) for each conditioning in <paramref name="conditions"/> (one batch), into <paramref name="result"/>.</summary>
    private void Predict(ReadOnlySpan<float> latent, float cIn, float timestep, TextConditioning[] conditions, Span<float> result, CancellationToken cancellationToken)
    {
        var batch = conditions.Length;
        var allocator = _model.Allocator;
        var inputs = new Dictionary<string, Tensor>();
        try
        {
            var sample = Tensor.Allocate(ElementType.Float32, [batch, .. _latentShape[1..]], allocator);
            inputs[_sample] = sample;
            for (var b = 0; b < batch; b++)
                for (var i = 0; i < latent.Length; i++) sample.Span<float>()[b * latent.Length + i] = latent[i] * cIn;
            inputs[_timestep] = _timestepType switch
            {
                ElementType.Int64 => Tensor.From<long>([(long)MathF.Round(timestep)], [1], allocator),
                ElementType.Int32 => Tensor.From<int>([(int)MathF.Round(timestep)], [1], allocator),
                ElementType.Float16 => Tensor.From<Half>([(Half)timestep], [1], allocator),
                _ => Tensor.From<float>([timestep], [1], allocator),
            };
            inputs[_hidden] = Tensor.From<float>(conditions.SelectMany(c => c.Hidden).ToArray(), [batch, _cond.Hidden.Length / _cond.Width, _cond.Width], allocator);
            if (_textEmbeds is not null)
            {
                inputs[_textEmbeds] = Tensor.From<float>(conditions.SelectMany(c => c.Pooled!).ToArray(), [batch, _cond.Pooled!.Length], allocator);
                inputs[_timeIdsName!] = Tensor.From<float>(Enumerable.Repeat(_timeIds!, batch).SelectMany(t => t).ToArray(), [batch, _timeIds!.Length], allocator);
            }
            using var outputs = RunModel(inputs, cancellationToken);
            var output = outputs[_output];
            if (output.ElementCount != result.Length)
                throw new InvalidOperationException($"The UNet returned [{string.Join(',', output.Shape)}] for a [{batch},{string.Join(',', _latentShape[1..])}] sample.");
            output.Span<float>().CopyTo(result);
            LastPeakBytes = outputs.PeakBytes;
        }
        finally
        {
            foreach (var tensor in inputs.Values) tensor.Dispose();
        }
    }

    /// <summary>
    /// Runs the UNet. Opened for other shapes than it declares, a failure most likely means an export with its batch or size
    /// baked into Reshape constants (traced without dynamic axes): the error says so, and what to change.
    /// </summary>
    private ComponentOutputs RunModel(Dictionary<string, Tensor> inputs, CancellationToken cancellationToken)
    {
        try
        {
            return _model.Run(inputs, [_output], cancellationToken);
        }
        catch (Exception e) when (_declaredSample is not null && e is not OperationCanceledException)
        {
            var why = _batched
                ? "Batched guidance (BatchGuidance, --batch-cfg) needs a UNet exported with a dynamic batch; exports traced at batch 1 bake it into their Reshape constants."
                : "A UNet runs at other sizes when exported with dynamic axes (not with its size baked into Reshape constants), at sizes its downsamplings " +
                  "halve evenly: multiples of 64 pixels for SD 1.5, 32 for SDXL.";
            throw new ArgumentException($"{_path}: the UNet fails on a [{string.Join(',', inputs[_sample].Shape)}] sample (it declares " +
                                        $"[{string.Join(',', _declaredSample)}]). {why} ({e.Message})", e);
        }
    }

    /// <summary>Closes the UNet.</summary>
    public void Dispose() => _model.Dispose();
}
