namespace OnnxStream.StableDiffusion.Pipeline;

/// <summary>Which Stable Diffusion model a folder holds.</summary>
public enum ModelKind
{
    /// <summary>Decide from the folder (SDXL folders have a second text encoder; Turbo is named so).</summary>
    Auto,
    /// <summary>Stable Diffusion 1.5 (512×512, one CLIP text encoder, latents scaled by 0.18215).</summary>
    StableDiffusion15,
    /// <summary>SDXL 1.0 base (1024×1024, two text encoders, time ids, latents scaled by 0.13025).</summary>
    StableDiffusionXL,
    /// <summary>SDXL Turbo (512×512, 1 to 4 steps, no classifier-free guidance).</summary>
    StableDiffusionXLTurbo,
}

/// <summary>How much memory the pipeline trades for speed.</summary>
public enum MemoryProfile
{
    /// <summary>
    /// Least memory: weights streamed with read-ahead, attention in 16 slices, the uint8 VAE decoder for SD 1.5
    /// when the folder has one, and tiled VAE decoding.
    /// </summary>
    LowMemory,
    /// <summary>Weights streamed, memory-efficient attention; tiled decoding for SDXL.</summary>
    Default,
    /// <summary>As <see cref="Default"/>, with the UNet's weights and packed operators kept in RAM after the first step.</summary>
    Ram,
}

/// <summary>How latents are decoded.</summary>
public enum DecoderTiling
{
    /// <summary>Tiled for SDXL and in <see cref="MemoryProfile.LowMemory"/>; whole otherwise.</summary>
    Auto,
    /// <summary>The whole latent at once.</summary>
    Whole,
    /// <summary>Overlapping latent tiles, blended linearly.</summary>
    Tiled,
}

/// <summary>Options of a <see cref="StableDiffusionPipeline"/> run (bind with Microsoft.Extensions.Options).</summary>
public sealed class StableDiffusionOptions
{
    /// <summary>The models folder: the original's published layout or the Hugging Face optimum/diffusers ONNX layout.</summary>
    public string ModelsPath { get; set; } = "";

    /// <summary>The layout of <see cref="ModelsPath"/> (default: the original's when its UNet folder is there, else Hugging Face's).</summary>
    public Models.ModelFolderLayout? Layout { get; set; }

    /// <summary>The model in <see cref="ModelsPath"/> (default: detected from the folder).</summary>
    public ModelKind Model { get; set; } = ModelKind.Auto;

    /// <summary>What to draw; <c>(word)</c>, <c>[word]</c> and <c>(word:1.3)</c> weight words (see <see cref="Tokenization.PromptEmphasis"/>).</summary>
    public string Prompt { get; set; } = "";

    /// <summary>What to steer away from (the unconditional pass's prompt); emphasis as in <see cref="Prompt"/>.</summary>
    public string NegativePrompt { get; set; } = "";

    /// <summary>Denoising steps; null: 10, as the original (1 for Turbo, which takes 1 to 4).</summary>
    public int? Steps { get; set; }

    /// <summary>The seed of the initial noise and of the sampler's noise; image i uses Seed + i.</summary>
    public long Seed { get; set; }

    /// <summary>
    /// Classifier-free guidance scale (default 7, the original's fixed value). 0 or 1 runs no unconditional pass
    /// (what SDXL Turbo needs); null: 7, or 0 for Turbo.
    /// </summary>
    public float? GuidanceScale { get; set; }

    /// <summary>
    /// Run the conditional and unconditional passes as one batch of two. Needs a UNet exported with a dynamic batch
    /// (exports traced at batch 1, such as tiny-sd15's, bake it into their Reshape constants).
    /// </summary>
    public bool BatchGuidance { get; set; }

    /// <summary>
    /// The sampler, one of <see cref="StableDiffusionPipeline.SamplerNames"/> (default euler_a, Euler ancestral, as the original):
    /// euler, euler_a, heun, dpm2, dpmpp_2m, dpmpp_2s_a, dpmpp_sde, lms, ddim, ddpm, lcm, tcd, or the original app's
    /// dpm++2m, dpm++2s, dpm++2s_a, ddim_a, ddpm_a, tcd_a.
    /// </summary>
    public string Sampler { get; set; } = "euler_a";

    /// <summary>Karras sigma spacing instead of the model's own (log-linear in its timesteps); for the k-diffusion samplers
    /// only (not ddim, ddpm, lcm, tcd).</summary>
    public bool KarrasSigmas { get; set; }

    /// <summary>Image width in pixels, a multiple of 8 (64 for most UNets); null: the model's native size.</summary>
    public int? Width { get; set; }

    /// <summary>Image height in pixels, a multiple of 8 (64 for most UNets); null: the model's native size.</summary>
    public int? Height { get; set; }

    /// <summary>Images to make, each from its own seed.</summary>
    public int ImageCount { get; set; } = 1;

    /// <summary>Memory against speed.</summary>
    public MemoryProfile MemoryProfile { get; set; } = MemoryProfile.Default;

    /// <summary>Whole or tiled decoding.</summary>
    public DecoderTiling DecoderTiling { get; set; } = DecoderTiling.Auto;

    /// <summary>Side of a square decoder tile in latent pixels (default 32, the original's SDXL tile); overlap is a quarter of it.</summary>
    public int DecoderTileSize { get; set; } = 32;

    /// <summary>Threads for the kernels.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// Called after each denoising step, on the generating thread, with the step's latents (e.g. to write previews). Null
    /// (the default) costs nothing.
    /// </summary>
    public Action<DenoisingStep>? StepCompleted { get; set; }

    /// <summary>
    /// Called right after each operation of each model run, on the running thread, with the component and the operation's
    /// trace entry (the original's ops-printf). Used by the default OnnxStream backend (<see cref="OnnxStreamBackend.For"/>).
    /// </summary>
    public Action<ComponentRole, Runtime.OperationTrace>? OperationCompleted { get; set; }

    /// <summary>
    /// Before decoding, calibrate the uint8 VAE decoder (<c>vae_decoder_qu8/</c>) on the generated latents and write its
    /// <see cref="DecoderRangeDataPath"/> (the original's --decoder-calibrate); later runs of that decoder use the ranges.
    /// Needs a folder with a uint8 decoder, or a <see cref="DecoderRangeDataPath"/> (the decoder that decodes is calibrated then).
    /// </summary>
    public bool CalibrateDecoder { get; set; }

    /// <summary>
    /// The uint8 VAE decoder's range_data.txt: what W8A8 decoding reads and <see cref="CalibrateDecoder"/> writes. Null: the
    /// decoder folder's own range_data.txt.
    /// </summary>
    public string? DecoderRangeDataPath { get; set; }

    /// <summary>
    /// Stop at the first NaN or infinity (default true): each model's operations are checked as they run (the OnnxStream
    /// backend's <see cref="Runtime.InferenceSessionOptions.CheckFinite"/>), the latents after each step, and a latent given to
    /// decode. The <see cref="Runtime.NonFiniteValueException"/> names the model, the step and the operation. False: a NaN
    /// goes on to the image (a black or uniform one).
    /// </summary>
    public bool CheckFinite { get; set; } = true;

    /// <summary>
    /// How the OnnxStream backend loads the models (e.g. <see cref="Graph.ModelLoadOptions.Lenient"/>: a model.txt shape that differs
    /// from the computed one is a warning, not an error; <see cref="Graph.ModelLoadOptions.AllowWeightsOutsideModelFolder"/>: the
    /// component models, and their sessions' range data and decoder calibration, may read files outside their folders).
    /// </summary>
    public Graph.ModelLoadOptions ModelLoading { get; set; } = new();
}
