using OnnxStream.Cli;
using OnnxStream.Memory;
using OnnxStream.Runtime;
using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Pipeline;
using OnnxStream.Tensors;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary>
/// NaN and infinities in the Stable Diffusion pipeline: refused as numeric arguments when <c>sd</c> parses them, and, with
/// <see cref="StableDiffusionOptions.CheckFinite"/> (on by default), an error naming the step and the operation rather than a
/// black or uniform image.
/// </summary>
internal sealed class NonFiniteValueTests
{
    [TestCase("nan")]
    [TestCase("NaN")]
    [TestCase("Infinity")]
    [TestCase("-Infinity")]
    public void A_non_finite_cfg_is_an_argument_error_at_parse_time(string value)
    {
        var parse = SdCommand.Create().Parse(["--models-path", "/nonexistent", "--cfg", value]);
        Assert.That(parse.Errors.Select(e => e.Message), Has.One.EqualTo($"--cfg must be a finite number, not {value}."));
    }

    [Test]
    public void Sd_checks_by_default_and_check_finite_false_turns_it_off()
    {
        var option = SdCommand.Create().Options.Single(o => o.Name == "--check-finite");
        Assert.That(SdCommand.Create().Parse(["--models-path", "m"]).GetValue<bool>("--check-finite"), Is.True);
        Assert.That(SdCommand.Create().Parse(["--models-path", "m", "--check-finite", "false"]).GetValue<bool>("--check-finite"), Is.False);
        Assert.That(option.Description, Does.Contain("NaN"));
        Assert.That(RunCommand.Create().Parse(["--model", "m", "--output-dir", "o"]).GetValue<bool>("--check-finite"), Is.False, "run does not check by default");
    }

    [Test]
    public void A_non_finite_guidance_scale_is_refused_by_the_pipeline()
    {
        var options = TinySd15PipelineTests.Options(ModelFolderLayout.OnnxStream);
        options.GuidanceScale = float.NaN;
        Assert.That(() => new StableDiffusionPipeline(options), Throws.ArgumentException.With.Message.Contains("GuidanceScale must be a finite number, not NaN."));
    }

    [Test]
    public void Decoding_a_NaN_latent_is_an_error_when_checking_and_an_image_when_not()
    {
        var options = TinySd15PipelineTests.Options(ModelFolderLayout.OnnxStream);
        var latent = new float[4 * 32 * 32];
        latent[100] = float.NaN;
        var error = Assert.ThrowsAsync<NonFiniteValueException>(async () => await new StableDiffusionPipeline(options).DecodeAsync(latent, [1, 4, 32, 32]))!;
        Assert.That(error.Message, Is.EqualTo("the latent to decode holds NaN at element 100 (CheckFinite)"));
        options.CheckFinite = false;
        Assert.That(async () => await new StableDiffusionPipeline(options).DecodeAsync(latent, [1, 4, 32, 32]), Throws.Nothing);
    }

    [Test]
    public void A_NaN_reaching_the_UNet_is_an_error_naming_the_step_the_model_and_the_operation()
    {
        var options = TinySd15PipelineTests.Options(ModelFolderLayout.OnnxStream);
        var backend = new PoisoningBackend(OnnxStreamBackend.For(options), ComponentRole.UNet, fromRun: 2); // step 2's first pass (2 passes a step)
        var error = Assert.ThrowsAsync<NonFiniteValueException>(async () => await new StableDiffusionPipeline(options, backend).GenerateAsync())!;
        TestContext.Out.WriteLine(error.Message);
        Assert.That(error.Message, Does.StartWith("image 1 of 1, denoising step 2 of 3: "));
        Assert.That(error.Model, Does.Contain("unet"));
        Assert.That(error.Operation, Is.Not.Null);
        Assert.That(error.Message, Does.Contain($"node '{error.Operation}'").And.Contain("holds NaN"));
    }

    /// <summary>Puts a NaN in the first float input of a component's runs from the <paramref name="fromRun"/>-th on (0-based).</summary>
    private sealed class PoisoningBackend(IInferenceBackend inner, ComponentRole role, int fromRun) : IInferenceBackend
    {
        private readonly int _fromRun = fromRun;
        private int _runs;

        public IComponentModel Open(string modelPath, ComponentRole opened, IReadOnlyDictionary<string, int[]>? inputShapes = null)
        {
            var model = inner.Open(modelPath, opened, inputShapes);
            return opened == role ? new Model(this, model) : model;
        }

        private sealed class Model(PoisoningBackend owner, IComponentModel model) : IComponentModel
        {
            public IReadOnlyList<ComponentInput> Inputs => model.Inputs;

            public IReadOnlyList<string> Outputs => model.Outputs;

            public NativeAllocator Allocator => model.Allocator;

            public ComponentOutputs Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string> outputs, CancellationToken cancellationToken)
            {
                if (owner._runs++ >= owner._fromRun) inputs.Values.First(t => t.ElementType == ElementType.Float32).Span<float>()[0] = float.NaN;
                return model.Run(inputs, outputs, cancellationToken);
            }

            public void Dispose() => model.Dispose();
        }
    }
}
