using OnnxStream.StableDiffusion.Download;
using OnnxStream.Tests.StableDiffusion.Pipeline;

namespace OnnxStream.Tests.StableDiffusion.Download;

/// <summary><c>onnxstream sd</c> without <c>--models-path</c> (the built CLI, run as a process) against a fake hub named by HF_ENDPOINT.</summary>
[Category("Models")]
internal sealed class SdDownloadCommandTests
{
    private string _home = null!;

    [SetUp]
    public void CreateHome() => _home = Directory.CreateTempSubdirectory("hf-home-").FullName;

    [TearDown]
    public void DeleteHome() => Directory.Delete(_home, true);

    /// <summary>The hub client's variables: this endpoint, HF_HOME a fresh folder, the others unset.</summary>
    private Dictionary<string, string?> Environment(string endpoint) => new()
    {
        ["HF_ENDPOINT"] = endpoint,
        ["HF_HOME"] = _home,
        ["HF_HUB_CACHE"] = null,
        ["HF_HUB_OFFLINE"] = null,
        ["HF_TOKEN"] = null,
    };

    [Test]
    public void Downloads_the_published_sd15_models_into_HF_HOME_and_generates()
    {
        var repository = PublishedModelRepository.StableDiffusion15;
        using var hub = FakeHub.ServingTinySd15(repository.RepoId, FakeHub.PipelineFiles);
        var png = Path.Combine(_home, "fox.png");
        var output = SdCommandTests.RunCli(Environment(hub.Endpoint), "sd", "--download", "auto", "--steps", "1", "--seed", "3", "--threads", "2",
            "--prompt", "a red fox", "--output", png);
        var snapshot = Path.Combine(_home, "hub", "models--vitoplantamura--stable-diffusion-1.5-onnxstream", "snapshots", FakeHub.Commit);
        Assert.That(output, Does.Contain($"{repository.RepoId}: downloaded ").And.Contain($"into {snapshot}").And.Contain("done in").And.Contain(png));
        Assert.That(File.ReadAllBytes(png).AsSpan(0, 8).ToArray(), Is.EqualTo(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }));
        Assert.That(File.ReadAllText(Path.Combine(_home, "hub", "models--vitoplantamura--stable-diffusion-1.5-onnxstream", "refs", "main")), Is.EqualTo(FakeHub.Commit));
    }

    [Test]
    public void Downloads_off_with_an_empty_cache_is_a_clear_error()
    {
        var output = SdCommandTests.RunCli(Environment(FakeHub.DeadEndpoint()), "sd", "--download", "N", "--steps", "1");
        Assert.That(output, Does.Contain("error: vitoplantamura/stable-diffusion-1.5-onnxstream (revision main) is not in the hub cache and downloads are off: " +
                                         Path.Combine(_home, "hub", "models--vitoplantamura--stable-diffusion-1.5-onnxstream", "refs", "main") + " is missing."));
    }

    [Test]
    public void An_unreachable_hub_is_a_clear_error_naming_the_endpoint_and_the_repository()
    {
        var endpoint = FakeHub.DeadEndpoint();
        var output = SdCommandTests.RunCli(Environment(endpoint), "sd", "--turbo", "--steps", "1");
        Assert.That(output, Does.Contain($"error: Cannot reach the hub at {endpoint} to get vitoplantamura/stable-diffusion-xl-turbo-1.0-anyshape-onnxstream (revision main): ")
            .And.Contain("or use a local models folder (--models-path)."));
    }
}
