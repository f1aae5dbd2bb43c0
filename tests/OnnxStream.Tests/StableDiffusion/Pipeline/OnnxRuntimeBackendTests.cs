using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Pipeline;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary>
/// The pipeline's backend seam: the same tiny-sd15 pipeline (Hugging Face layout, float32) run by ONNX Runtime and by
/// OnnxStream gives the same latents within 1e-4 of their max |value| (only summation order differs).
/// </summary>
[Category("Models")]
internal sealed class OnnxRuntimeBackendTests
{
    [Test]
    public async Task OnnxRuntime_and_OnnxStream_give_the_same_latents()
    {
        var options = TinySd15PipelineTests.Options(ModelFolderLayout.Diffusers, steps: 2);
        var ort = (await new StableDiffusionPipeline(options, new OnnxRuntimeBackend()).GenerateAsync())[0];
        var engine = (await new StableDiffusionPipeline(options).GenerateAsync())[0];
        var (maxError, maxReference) = Models.TinySd15Tests.Compare(engine.Latent, ort.Latent);
        TestContext.Out.WriteLine($"OnnxStream vs ONNX Runtime: max |latent difference| {maxError:G3} of max |latent| {maxReference:G3} ({maxError / maxReference:G3})");
        Assert.That(maxError, Is.LessThanOrEqualTo(1e-4 * maxReference));
        Assert.That(maxReference, Is.GreaterThan(0));
    }
}
