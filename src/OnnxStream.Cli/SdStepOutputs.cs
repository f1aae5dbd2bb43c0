using System.Globalization;
using OnnxStream.Runtime;
using OnnxStream.StableDiffusion.Imaging;
using OnnxStream.StableDiffusion.Pipeline;
using Spectre.Console;

namespace OnnxStream.Cli;

/// <summary>
/// What <c>onnxstream sd</c> writes after each denoising step: <c>--preview-steps</c> (the step's x₀ estimate through
/// <see cref="LatentPreview"/>, at the latent's size), <c>--preview-steps-x8</c> (the same upsampled to the image's size)
/// and <c>--decode-steps</c> (the latent after the step through the VAE decoder; not after the last step, whose image is
/// the output). Files are named after the image's output file: <c>result_preview_3.png</c>, <c>result_preview_x8_3.png</c>,
/// <c>result_step_3.png</c> after step 3 of <c>result.png</c> (image 2 of <c>--num</c>: <c>result_1_step_3.png</c>).
/// </summary>
internal sealed class SdStepOutputs(StableDiffusionPipeline pipeline, string output, bool preview, bool previewX8, bool decode, CancellationToken cancellationToken)
{
    private readonly SortedSet<string> _kinds = new(StringComparer.Ordinal);
    private int _written;

    /// <summary>Whether any per-step output is asked for.</summary>
    public bool Any => preview || previewX8 || decode;

    /// <summary>The file of image <paramref name="image"/> (0-based): <paramref name="output"/>, then <c>NAME_i.EXT</c>.</summary>
    public static string ImagePath(string output, int image) =>
        image == 0 ? output : WithSuffix(output, string.Create(CultureInfo.InvariantCulture, $"_{image}"));

    /// <summary>The file of a per-step output: the image's file with <c>_KIND_STEP</c> before the extension.</summary>
    public static string StepPath(string output, int image, string kind, int step) =>
        WithSuffix(ImagePath(output, image), string.Create(CultureInfo.InvariantCulture, $"_{kind}_{step}"));

    private static string WithSuffix(string path, string suffix) => Path.ChangeExtension(path, null) + suffix + Path.GetExtension(path);

    /// <summary>Writes the outputs of one step (for <see cref="StableDiffusionOptions.StepCompleted"/>).</summary>
    public void Write(DenoisingStep step)
    {
        var (height, width) = (step.LatentHeight, step.LatentWidth);
        if (preview) Save(step, "preview", LatentPreview.ToImage(step.Denoised.Span, height, width, pipeline.Folder.IsXL));
        if (previewX8) Save(step, "preview_x8", LatentPreview.ToImage(step.Denoised.Span, height, width, pipeline.Folder.IsXL, upscale: 8));
        if (decode && step.Step < step.Steps) Save(step, "step", pipeline.Decode(step.Latent.Span, [1, 4, height, width], cancellationToken));
    }

    /// <summary>What was written, for the summary line: e.g. "4 step images (result_preview_N.png, result_step_N.png)"; empty when nothing.</summary>
    public string Summary => _written == 0
        ? ""
        : $"{_written} step image{(_written == 1 ? "" : "s")} ({string.Join(", ", _kinds.Select(kind => WithSuffix(output, $"_{kind}_N")))})";

    private void Save(DenoisingStep step, string kind, RgbImage image)
    {
        PngFile.Write(StepPath(output, step.Image, kind, step.Step), image);
        _kinds.Add(kind);
        _written++;
    }

    /// <summary>
    /// <c>--ops-printf</c>: one line per operation as it completes, e.g. <c>[unet] Conv /conv_in/Conv 12.5 ms, 3.4 MiB held</c>.
    /// On a terminal it goes through Spectre.Console, above the progress bars; redirected, straight to the output, unwrapped
    /// (the progress lines are then written on the same thread, in order).
    /// </summary>
    public static void PrintOperation(ComponentRole role, OperationTrace operation)
    {
        var line = string.Create(CultureInfo.InvariantCulture,
            $"[{RoleName(role)}] {operation.OpType} {operation.Node} {operation.Milliseconds:F1} ms, {operation.LiveBytes / 1048576.0:F1} MiB held");
        if (Console.IsOutputRedirected) Console.Out.WriteLine(line);
        else AnsiConsole.WriteLine(line);
    }

    private static string RoleName(ComponentRole role) => role switch
    {
        ComponentRole.TextEncoder => "text_encoder",
        ComponentRole.UNet => "unet",
        _ => "vae_decoder",
    };
}
