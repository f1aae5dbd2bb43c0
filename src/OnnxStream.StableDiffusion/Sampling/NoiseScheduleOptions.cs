using System.Text.Json;

namespace OnnxStream.StableDiffusion.Sampling;

/// <summary>
/// The training noise schedule of a model: diffusers' <c>scheduler/scheduler_config.json</c> keys. The defaults are
/// Stable Diffusion 1.5's (and SDXL's): scaled-linear betas from 0.00085 to 0.012 over 1000 steps, ε-prediction,
/// leading spacing with offset 1, final ᾱ of DDIM = ᾱ₀.
/// </summary>
public sealed class NoiseScheduleOptions
{
    /// <summary><c>beta_start</c>.</summary>
    public double BetaStart { get; set; } = 0.00085;

    /// <summary><c>beta_end</c>.</summary>
    public double BetaEnd { get; set; } = 0.012;

    /// <summary><c>beta_schedule</c>.</summary>
    public BetaSchedule BetaSchedule { get; set; } = BetaSchedule.ScaledLinear;

    /// <summary><c>num_train_timesteps</c>.</summary>
    public int TrainTimesteps { get; set; } = 1000;

    /// <summary><c>prediction_type</c>.</summary>
    public PredictionType PredictionType { get; set; } = PredictionType.Epsilon;

    /// <summary><c>timestep_spacing</c> (DDIM, DDPM).</summary>
    public TimestepSpacing TimestepSpacing { get; set; } = TimestepSpacing.Leading;

    /// <summary><c>steps_offset</c>, added to leading timesteps (DDIM, DDPM).</summary>
    public int StepsOffset { get; set; } = 1;

    /// <summary><c>set_alpha_to_one</c>: whether DDIM's last step goes to ᾱ = 1 (σ = 0) rather than ᾱ₀.</summary>
    public bool SetAlphaToOne { get; set; }

    /// <summary><c>original_inference_steps</c>: the distillation schedule LCM and TCD pick their timesteps from.</summary>
    public int OriginalInferenceSteps { get; set; } = 50;

    /// <summary>Reads the keys above from a diffusers <c>scheduler_config.json</c>; a key that is absent keeps its
    /// default. Values this library cannot follow (trained betas, other beta schedules or prediction types) are
    /// refused with the file and key named.</summary>
    public static NoiseScheduleOptions FromDiffusersConfig(string path)
    {
        var options = new NoiseScheduleOptions();
        JsonDocument document;
        try { document = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e); }
        using (document)
        try
        {
            var root = document.RootElement;
            bool Has(string key, out JsonElement value) =>
                root.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;
            InvalidDataException Unsupported(string key, JsonElement value) =>
                new($"{path}: {key} = {value.GetRawText()} is not supported.");

            if (Has("trained_betas", out var trained)) throw Unsupported("trained_betas", trained);
            if (Has("beta_start", out var v)) options.BetaStart = v.GetDouble();
            if (Has("beta_end", out v)) options.BetaEnd = v.GetDouble();
            if (Has("num_train_timesteps", out v)) options.TrainTimesteps = v.GetInt32();
            if (Has("steps_offset", out v)) options.StepsOffset = v.GetInt32();
            if (Has("set_alpha_to_one", out v)) options.SetAlphaToOne = v.GetBoolean();
            if (Has("original_inference_steps", out v)) options.OriginalInferenceSteps = v.GetInt32();
            if (Has("beta_schedule", out v))
                options.BetaSchedule = v.GetString() switch
                {
                    "scaled_linear" => BetaSchedule.ScaledLinear,
                    "linear" => BetaSchedule.Linear,
                    _ => throw Unsupported("beta_schedule", v),
                };
            if (Has("prediction_type", out v))
                options.PredictionType = v.GetString() switch
                {
                    "epsilon" => PredictionType.Epsilon,
                    "v_prediction" => PredictionType.VPrediction,
                    _ => throw Unsupported("prediction_type", v),
                };
            if (Has("timestep_spacing", out v))
                options.TimestepSpacing = v.GetString() switch
                {
                    "leading" => TimestepSpacing.Leading,
                    "trailing" => TimestepSpacing.Trailing,
                    "linspace" => TimestepSpacing.Linspace,
                    _ => throw Unsupported("timestep_spacing", v),
                };
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: a value has the wrong type ({e.Message}).", e);
        }
        return options;
    }
}
