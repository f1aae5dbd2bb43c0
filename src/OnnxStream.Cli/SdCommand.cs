using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using OnnxStream.IO;
using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.Tensors;
using Spectre.Console;

namespace OnnxStream.Cli;

/// <summary><c>onnxstream sd</c>: the original's Stable Diffusion app, same options, plus a few.</summary>
internal static class SdCommand
{
    public static Command Create()
    {
        var xl = new Option<bool>("--xl") { Description = "SDXL 1.0 base (default: detected from the models folder)." };
        var turbo = new Option<bool>("--turbo") { Description = "SDXL Turbo (1 to 4 steps, no guidance)." };
        var modelsPath = new Option<string?>("--models-path") { Description = "The models folder: the original's layout or Hugging Face's ONNX layout (default: the hub cache, see --download)." };
        var layout = new Option<string?>("--layout") { Description = "onnxstream or diffusers, when the folder holds both (default: onnxstream's when present)." };
        layout.AcceptOnlyFromAmong("onnxstream", "diffusers");
        var opsPrintf = new Option<bool>("--ops-printf") { Description = "Print each operation as it completes: [model] type name, milliseconds, MiB held." };
        var output = new Option<string>("--output") { Description = "The PNG to write (image i > 0 of --num gets _i before the extension).", DefaultValueFactory = _ => "result.png" };
        var decodeLatents = new Option<string?>("--decode-latents") { Description = "Decode this .npy latent (1,4,H/8,W/8) instead of generating." };
        var prompt = new Option<string>("--prompt") { Description = "What to draw.", DefaultValueFactory = _ => "a photo of an astronaut riding a horse on mars" };
        var negative = new Option<string>("--neg-prompt") { Description = "What to avoid.", DefaultValueFactory = _ => "ugly, blurry" };
        var num = new Option<int>("--num") { Description = "Images to make (seeds SEED, SEED+1, ...).", DefaultValueFactory = _ => 1 };
        AtLeastOne(num);
        var steps = new Option<int?>("--steps") { Description = "Denoising steps (default 10; Turbo 1)." };
        AtLeastOne(steps);
        var seed = new Option<long?>("--seed") { Description = "The seed (default: from the clock)." };
        var saveLatents = new Option<string?>("--save-latents") { Description = "Also write the final latent as .npy here." };
        var calibrate = new Option<bool>("--decoder-calibrate")
        {
            Description = "Before decoding, calibrate the uint8 VAE decoder (vae_decoder_qu8/) on the latents and write its range_data.txt, which its later runs " +
                          "(--rpi-lowmem) quantize activations with.",
        };
        var rangeData = new Option<string?>("--decoder-range-data") { Description = "The uint8 decoder's range_data.txt to use and --decoder-calibrate to write (default: the one in vae_decoder_qu8/)." };
        var notTiled = new Option<bool>("--not-tiled") { Description = "Decode the whole latent at once instead of in tiles." };
        var res = new Option<string?>("--res") { Description = "WIDTHxHEIGHT, e.g. 512x512." };
        var width = new Option<int?>("--width") { Description = "Image width (multiple of 8)." };
        MultipleOf8(width);
        var height = new Option<int?>("--height") { Description = "Image height (multiple of 8)." };
        MultipleOf8(height);
        var ram = new Option<bool>("--ram") { Description = "Keep the UNet's weights and packed operators in RAM (faster, more memory)." };
        var download = new Option<string?>("--download") { Description = "A (auto), F (force) or N (never): fetch the original's published models from the Hugging Face hub into its cache (HF_HOME) when --models-path is absent (default: A without --models-path, N with it)." };
        download.AcceptOnlyFromAmong("A", "F", "N", "a", "f", "n", "auto", "force", "never");
        var rpi = new Option<string>("--rpi") { Description = "Raspberry Pi settings (the low-memory profile): A when /proc/device-tree/model or /proc/cpuinfo names a Raspberry Pi, F always, D never.", DefaultValueFactory = _ => "A" };
        rpi.AcceptOnlyFromAmong("A", "F", "D", "a", "f", "d");
        var rpiLowmem = new Option<bool>("--rpi-lowmem") { Description = "Least memory: sliced attention, the uint8 VAE decoder for SD 1.5 (W8A8 with its range_data.txt), tiled decoding." };
        var threads = new Option<int>("--threads") { Description = "Threads for the kernels.", DefaultValueFactory = _ => Environment.ProcessorCount };
        AtLeastOne(threads);
        var previewSteps = new Option<bool>("--preview-steps")
        {
            Description = "After each step, write the step's estimate of the image, approximated without the VAE at 1/8 of the image's size, " +
                          "to OUTPUT_preview_STEP.png (e.g. result_preview_3.png).",
        };
        var previewStepsX8 = new Option<bool>("--preview-steps-x8") { Description = "As --preview-steps, upsampled to the image's size: OUTPUT_preview_x8_STEP.png." };
        var decodeSteps = new Option<bool>("--decode-steps") { Description = "After each step but the last, decode the latent with the VAE and write OUTPUT_step_STEP.png (e.g. result_step_3.png)." };
        var embed = new Option<bool>("--embed-parameters") { Description = "Write the generation parameters into the PNG (tEXt chunk 'parameters')." };
        var sampler = new Option<string>("--sampler")
        {
            Description = $"The sampler: {string.Join(", ", StableDiffusionPipeline.SamplerNames)}.",
            DefaultValueFactory = _ => "euler_a",
        };
        var cfg = new Option<float?>("--cfg") { Description = "Classifier-free guidance scale (default 7; Turbo 0 = no unconditional pass)." };
        Finite(cfg);
        var checkFinite = new Option<bool>("--check-finite")
        {
            Description = "Stop at the first NaN or infinity, naming the model, the step and the operation (every operation's output, the latents " +
                          "after each step, a latent to decode); --check-finite false lets it through to the image.",
            DefaultValueFactory = _ => true,
        };
        var lenient = new Option<bool>("--lenient") { Description = "A model.txt shape that differs from the computed one is a warning (the computed one is used), not an error." };
        var karras = new Option<bool>("--karras") { Description = "Karras sigma spacing (k-diffusion samplers: not ddim, ddpm, lcm, tcd)." };
        var memoryReport = new Option<bool>("--memory-report") { Description = "Print the peak tracked bytes of each step and the peak RSS." };
        var batch = new Option<bool>("--batch-cfg") { Description = "Run both guidance passes as one batch of two (UNets exported with a dynamic batch)." };

        var allowOutside = AllowOutsideWeightsOption.Create();
        var command = new Command("sd", "Stable Diffusion 1.5, SDXL or SDXL Turbo: text to image.")
        {
            xl, turbo, modelsPath, layout, opsPrintf, output, decodeLatents, prompt, negative, num, steps, seed, saveLatents, calibrate, rangeData, notTiled,
            res, width, height, ram, download, rpi, rpiLowmem, threads, previewSteps, previewStepsX8, decodeSteps, embed, sampler, cfg, karras, memoryReport, batch,
            checkFinite, lenient, allowOutside,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var (resWidth, resHeight) = ParseResolution(result.GetValue(res));
            var isTurbo = result.GetValue(turbo);
            var model = isTurbo ? ModelKind.StableDiffusionXLTurbo : result.GetValue(xl) ? ModelKind.StableDiffusionXL : ModelKind.Auto;
            var outputPath = result.GetValue(output)!;
            // The files to write are checked before the work (a directory, a missing or read-only folder), not after it.
            foreach (var (name, file) in new[] { ("--output", outputPath), ("--save-latents", result.GetValue(saveLatents)), ("--decoder-range-data", result.GetValue(rangeData)) })
                if (file is not null && Path.GetDirectoryName(Path.GetFullPath(file)) is { } folder && !Directory.Exists(folder))
                    throw new ArgumentException($"{name} {file}: the folder {folder} does not exist.");
            foreach (var (name, file) in new[] { ("--output", outputPath), ("--save-latents", result.GetValue(saveLatents)) })
                if (file is not null)
                {
                    try
                    {
                        AtomicFile.EnsureWritable(file);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        throw new ArgumentException($"{name} {e.Message}", e);
                    }
                }
            var rpiMode = result.GetValue(rpi)!.ToUpperInvariant();
            var detectedPi = rpiMode == "A" ? RaspberryPi.Detect() : null;
            if (detectedPi is not null) Console.WriteLine($"{detectedPi} detected: Raspberry Pi (low-memory) settings; --rpi D turns them off.");
            var options = new StableDiffusionOptions
            {
                ModelsPath = await SdModelDownload.ResolveAsync(result.GetValue(modelsPath), result.GetValue(download), model, cancellationToken),
                Layout = result.GetValue(layout) switch { "onnxstream" => ModelFolderLayout.OnnxStream, "diffusers" => ModelFolderLayout.Diffusers, _ => null },
                Model = model,
                Prompt = result.GetValue(prompt)!,
                NegativePrompt = result.GetValue(negative)!,
                Steps = result.GetValue(steps),
                Seed = result.GetValue(seed) ?? DateTime.UtcNow.Ticks % 1_000_000,
                GuidanceScale = result.GetValue(cfg),
                Sampler = result.GetValue(sampler)!,
                KarrasSigmas = result.GetValue(karras),
                Width = result.GetValue(width) ?? resWidth,
                Height = result.GetValue(height) ?? resHeight,
                ImageCount = result.GetValue(num),
                MemoryProfile = result.GetValue(rpiLowmem) || rpiMode == "F" || detectedPi is not null ? MemoryProfile.LowMemory
                    : result.GetValue(ram) ? MemoryProfile.Ram : MemoryProfile.Default,
                DecoderTiling = result.GetValue(notTiled) ? DecoderTiling.Whole : DecoderTiling.Auto,
                Threads = result.GetValue(threads),
                BatchGuidance = result.GetValue(batch),
                OperationCompleted = result.GetValue(opsPrintf) ? SdStepOutputs.PrintOperation : null,
                CalibrateDecoder = result.GetValue(calibrate),
                DecoderRangeDataPath = result.GetValue(rangeData),
                CheckFinite = result.GetValue(checkFinite),
                ModelLoading = new Graph.ModelLoadOptions
                {
                    AllowWeightsOutsideModelFolder = result.GetValue(allowOutside),
                    Lenient = result.GetValue(lenient),
                    Warning = message => Console.Error.WriteLine($"warning: {message}"),
                },
            };
            var pipeline = new StableDiffusionPipeline(options);
            var clock = Stopwatch.StartNew();
            var stepOutputs = new SdStepOutputs(pipeline, outputPath, result.GetValue(previewSteps), result.GetValue(previewStepsX8), result.GetValue(decodeSteps), cancellationToken);
            if (stepOutputs.Any) options.StepCompleted = stepOutputs.Write;
            Console.WriteLine(Settings(options, pipeline, generating: result.GetValue(decodeLatents) is null));
            var written = new List<string>();
            if (result.GetValue(decodeLatents) is { } latentFile)
            {
                using var tensor = NpyFile.Read(latentFile);
                if (tensor.ElementType != ElementType.Float32) throw new ArgumentException($"{latentFile}: a latent is float32, not {tensor.ElementType}.");
                var image = await WithProgress(progress => pipeline.DecodeAsync(tensor.Span<float>().ToArray(), tensor.Shape, progress, cancellationToken), 1, result.GetValue(memoryReport));
                PngFile.Write(outputPath, image);
                written.Add(outputPath);
            }
            else
            {
                var images = await WithProgress(progress => pipeline.GenerateAsync(progress, cancellationToken), options.ImageCount, result.GetValue(memoryReport));
                for (var i = 0; i < images.Count; i++)
                {
                    var path = SdStepOutputs.ImagePath(outputPath, i);
                    var text = result.GetValue(embed) ? new Dictionary<string, string> { ["parameters"] = Parameters(options, pipeline, images[i].Seed) } : null;
                    PngFile.Write(path, images[i].Image, text);
                    written.Add(path);
                    if (result.GetValue(saveLatents) is { } latentPath)
                    {
                        var file = i == 0 ? latentPath : Path.ChangeExtension(latentPath, null) + $"_{i}.npy";
                        using var latent = Tensor.From<float>(images[i].Latent, images[i].LatentShape);
                        NpyFile.Write(file, latent);
                    }
                }
            }
            if (options.CalibrateDecoder) Console.WriteLine($"calibrated the VAE decoder: wrote {pipeline.DecoderRangeDataPath}");
            using var process = Process.GetCurrentProcess();
            Console.WriteLine($"done in {clock.Elapsed.TotalSeconds:F1} s, peak RSS {process.PeakWorkingSet64 / 1048576.0:F0} MiB, wrote {string.Join(", ", written)}" +
                              (stepOutputs.Summary is { Length: > 0 } stepFiles ? $" and {stepFiles}" : ""));
            return 0;
        });
        return command;
    }

    /// <summary>The generation parameters as one line (as other Stable Diffusion tools write them).</summary>
    private static string Parameters(StableDiffusionOptions options, StableDiffusionPipeline pipeline, long seed) => string.Create(CultureInfo.InvariantCulture,
        $"{options.Prompt}\nNegative prompt: {options.NegativePrompt}\nSteps: {pipeline.Steps}, Sampler: {options.Sampler}{(options.KarrasSigmas ? " Karras" : "")}, " +
        $"CFG scale: {pipeline.GuidanceScale}, Seed: {seed}, Model: {pipeline.Folder.Kind}, Size: {options.Width?.ToString(CultureInfo.InvariantCulture) ?? "native"}x{options.Height?.ToString(CultureInfo.InvariantCulture) ?? "native"}");

    /// <summary>One line of what the run will do, as the options and the models folder decide it.</summary>
    private static string Settings(StableDiffusionOptions options, StableDiffusionPipeline pipeline, bool generating)
    {
        var culture = CultureInfo.InvariantCulture;
        var size = options.Width is null && options.Height is null
            ? "the model's size"
            : $"{options.Width?.ToString(culture) ?? "native"}x{options.Height?.ToString(culture) ?? "native"}";
        var seeds = options.ImageCount > 1 ? string.Create(culture, $"{options.Seed} to {options.Seed + options.ImageCount - 1}") : options.Seed.ToString(culture);
        var what = generating
            ? string.Create(culture, $"{size}, {pipeline.Steps} steps of {options.Sampler}{(options.KarrasSigmas ? " (Karras)" : "")}, CFG {pipeline.GuidanceScale}, seed {seeds}")
            : "decoding a saved latent";
        return string.Create(culture, $"{pipeline.Folder.Kind} ({pipeline.Folder.Layout} layout) in {pipeline.Folder.Root}: {what}, {options.MemoryProfile} memory profile, " +
                                      $"{(pipeline.TiledDecoding ? "tiled" : "whole")} decoding, {options.Threads} thread{(options.Threads == 1 ? "" : "s")}");
    }

    private static void AtLeastOne<T>(Option<T> option) => option.Validators.Add(result =>
    {
        if (GivenNumber(result) is { } value && value < 1) result.AddError($"{option.Name} must be at least 1, not {value}.");
    });

    /// <summary>Refuses NaN and infinities (which float parsing accepts: "nan", "Infinity") at parse time.</summary>
    internal static void Finite(Option<float?> option) => option.Validators.Add(result =>
    {
        if (result.Tokens is [var token] && float.TryParse(token.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && !float.IsFinite(value))
            result.AddError($"{option.Name} must be a finite number, not {token.Value}.");
    });

    private static void MultipleOf8(Option<int?> option) => option.Validators.Add(result =>
    {
        if (GivenNumber(result) is { } value && (value < 8 || value % 8 != 0)) result.AddError($"{option.Name} must be a positive multiple of 8, not {value}.");
    });

    /// <summary>The whole number given on the command line, or null (not given, or not a number: the parser reports that).</summary>
    private static int? GivenNumber(System.CommandLine.Parsing.OptionResult result) =>
        result.Tokens is [var token] && int.TryParse(token.Value, CultureInfo.InvariantCulture, out var value) ? value : null;

    private static (int?, int?) ParseResolution(string? text)
    {
        if (text is null) return (null, null);
        var parts = text.ToLowerInvariant().Split('x');
        return parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out var w) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var h)
            ? (w, h)
            : throw new ArgumentException($"--res '{text}' is not WIDTHxHEIGHT.");
    }

    /// <summary>
    /// Runs <paramref name="run"/> under a progress bar per image (steps, then decoder tiles) with s/step and the RSS; with the
    /// output redirected (no terminal to redraw), a line per step and tile instead, written on the generating thread so that
    /// it stays in order with --ops-printf's lines.
    /// </summary>
    private static async Task<T> WithProgress<T>(Func<IProgress<PipelineProgress>, Task<T>> run, int images, bool memoryReport)
    {
        var reports = new List<string>();
        var last = TimeSpan.Zero;
        string? Describe(PipelineProgress p)
        {
            if (p.Stage == PipelineStage.EncodingText) return null;
            var rss = Environment.WorkingSet / 1048576.0;
            var perStep = (p.Elapsed - last).TotalSeconds;
            last = p.Elapsed;
            if (memoryReport)
                reports.Add($"{p.Stage} image {p.Image + 1} {p.Step}/{p.Steps}: peak tracked {p.PeakBytes / 1048576.0:F1} MiB, RSS {rss:F0} MiB");
            return $"image {p.Image + 1}/{images} {(p.Stage == PipelineStage.Denoising ? "step" : "tile")} {p.Step}/{p.Steps} " +
                   $"{perStep:F2} s/{(p.Stage == PipelineStage.Denoising ? "step" : "tile")} RSS {rss:F0} MiB";
        }

        T value;
        if (Console.IsOutputRedirected)
            value = await run(new InlineProgress(p =>
            {
                if (Describe(p) is { } line) Console.WriteLine(line);
            }));
        else
        {
            value = default!;
            await AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .StartAsync(async context =>
                {
                    var tasks = new Dictionary<(int, PipelineStage), ProgressTask>();
                    value = await run(new InlineProgress(p =>
                    {
                        if (Describe(p) is not { } line) return;
                        var key = (p.Image, p.Stage);
                        if (!tasks.TryGetValue(key, out var task))
                            tasks[key] = task = context.AddTask(line, maxValue: p.Steps);
                        task.Value = p.Step;
                        task.Description = line;
                    }));
                });
        }
        foreach (var line in reports) Console.WriteLine(line);
        return value;
    }

    private sealed class InlineProgress(Action<PipelineProgress> report) : IProgress<PipelineProgress>
    {
        public void Report(PipelineProgress value) => report(value);
    }
}
