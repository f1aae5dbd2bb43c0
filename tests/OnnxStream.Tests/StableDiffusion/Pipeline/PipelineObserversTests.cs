using OnnxStream.StableDiffusion.Models;
using OnnxStream.StableDiffusion.Pipeline;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary><see cref="StableDiffusionOptions.StepCompleted"/> and <see cref="StableDiffusionOptions.OperationCompleted"/> on tiny-sd15.</summary>
[Category("Models")]
internal sealed class PipelineObserversTests
{
    /// <summary>
    /// Two Euler steps, observed and not: the observers see every step and every operation and change nothing. Euler's
    /// last step goes to σ = 0, where the latent becomes the step's x₀ estimate, so the last step's Denoised is the final
    /// latent (to float rounding); the first step's estimate is another (close to it: two steps of the folder's "leading"
    /// spacing are timesteps 501 and 1, σ = 1.62 then 0.041, so the first step already lands near its estimate).
    /// </summary>
    [Test]
    public async Task Observers_see_each_step_and_each_operation_and_change_nothing()
    {
        var options = TinySd15PipelineTests.Options(ModelFolderLayout.OnnxStream, steps: 2);
        options.Sampler = "euler";
        var plain = (await new StableDiffusionPipeline(options).GenerateAsync())[0];

        var steps = new List<(DenoisingStep Step, float[] Latent, float[] Denoised)>();
        var operations = new List<(ComponentRole Role, string Node)>();
        options.StepCompleted = step => steps.Add((step, step.Latent.ToArray(), step.Denoised.ToArray()));
        options.OperationCompleted = (role, operation) => operations.Add((role, operation.Node));
        var observed = (await new StableDiffusionPipeline(options).GenerateAsync())[0];

        Assert.That(observed.Latent, Is.EqualTo(plain.Latent), "observing changes nothing");
        Assert.That(steps.Select(s => (s.Step.Image, s.Step.Images, s.Step.Step, s.Step.Steps, s.Step.Seed, s.Step.LatentHeight, s.Step.LatentWidth)),
            Is.EqualTo(new[] { (0, 1, 1, 2, 42L, 32, 32), (0, 1, 2, 2, 42L, 32, 32) }));
        Assert.That(steps[1].Latent, Is.EqualTo(observed.Latent), "after the last step, the final latent");
        var scale = observed.Latent.Max(Math.Abs);
        Assert.That(steps[1].Denoised, Is.EqualTo(observed.Latent).Within(1e-5 * scale), "Euler's last step lands on its x₀ estimate");
        Assert.That(steps[0].Denoised, Is.Not.EqualTo(steps[1].Denoised), "each step has its own estimate");

        // Two prompts through the text encoder, 2 steps × 2 guidance passes through the UNet, one decoding: each run of a model
        // reports the same operations in the same order.
        var byRole = operations.GroupBy(o => o.Role).ToDictionary(g => g.Key, g => g.Select(o => o.Node).ToList());
        Assert.That(byRole.Keys, Is.EquivalentTo(new[] { ComponentRole.TextEncoder, ComponentRole.UNet, ComponentRole.VaeDecoder }));
        foreach (var (role, runs) in new[] { (ComponentRole.TextEncoder, 2), (ComponentRole.UNet, 4), (ComponentRole.VaeDecoder, 1) })
        {
            var nodes = byRole[role];
            Assert.That(nodes.Count % runs, Is.Zero, $"{role}: {nodes.Count} operations in {runs} runs");
            var perRun = nodes.Count / runs;
            Assert.That(perRun, Is.GreaterThan(20), role.ToString());
            for (var run = 1; run < runs; run++)
                Assert.That(nodes.Skip(run * perRun).Take(perRun), Is.EqualTo(nodes.Take(perRun)), $"{role} run {run + 1}");
        }
        Assert.That(operations.Select(o => o.Role).Distinct(), Is.EqualTo(new[] { ComponentRole.TextEncoder, ComponentRole.UNet, ComponentRole.VaeDecoder }),
            "the models run one after the other");
    }
}
