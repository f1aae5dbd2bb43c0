using System.CommandLine;
using OnnxStream.Cli;
using OnnxStream.Tests.Models;

namespace OnnxStream.Tests.StableDiffusion.Pipeline;

/// <summary>
/// <c>onnxstream sd</c> in-process: what it says to bad arguments (the message <c>Program</c> prints after "error: ",
/// without a stack trace), the names of its per-step files, and its Raspberry Pi detection.
/// </summary>
internal sealed class SdCommandOptionsTests
{
    private const string Models = "<tiny-sd15>";

    [TestCase("--steps 0", "--steps must be at least 1, not 0.")]
    [TestCase("--num 0", "--num must be at least 1, not 0.")]
    [TestCase("--threads 0", "--threads must be at least 1, not 0.")]
    [TestCase("--width 100", "--width must be a positive multiple of 8, not 100.")]
    [TestCase("--height 0", "--height must be a positive multiple of 8, not 0.")]
    [TestCase("--steps abc", "Cannot parse argument 'abc' for option '--steps'")]
    [TestCase("--rpi X", "Argument 'X' not recognized. Must be one of:")]
    [TestCase("--res 10x10", "The image size 10×10 must be a positive multiple of 8 on both sides.")]
    [TestCase("--res large", "--res 'large' is not WIDTHxHEIGHT.")]
    [TestCase("--sampler nope", "'nope' is not a sampler; the samplers are euler, euler_a,")]
    [TestCase("--decoder-calibrate --layout diffusers", "Calibrating the uint8 VAE decoder needs its folder (vae_decoder_qu8/ in")]
    [TestCase("--output /nonexistent/folder/x.png", "--output /nonexistent/folder/x.png: the folder /nonexistent/folder does not exist.")]
    public void Bad_arguments_get_a_message_naming_what_is_wrong(string arguments, string message)
    {
        var models = SharedFixtures.Require("models/tiny-sd15");
        Assert.That(ErrorOf(["--models-path", Models, .. arguments.Split(' ')], models), Does.Contain(message));
    }

    [Test]
    public void An_absent_models_folder_is_named() =>
        Assert.That(ErrorOf(["--models-path", "/nonexistent/models"], ""), Does.Contain("The models folder /nonexistent/models does not exist."));

    /// <summary>
    /// The settings line (printed before any model runs) shows what each option became: the size, steps, sampler, guidance,
    /// seeds, memory profile (--ram, --rpi, --rpi-lowmem), decoding (--not-tiled) and threads.
    /// </summary>
    [TestCase("--steps 3 --seed 9 --sampler dpm++2m --cfg 2.5 --width 256 --height 256 --threads 1",
        "256x256, 3 steps of dpm++2m, CFG 2.5, seed 9, Default memory profile, whole decoding, 1 thread")]
    [TestCase("--seed 7 --num 3 --karras --res 256x256", "256x256, 10 steps of euler_a (Karras), CFG 7, seed 7 to 9, Default memory profile")]
    [TestCase("--ram --threads 3", "Ram memory profile, whole decoding, 3 threads")]
    [TestCase("--rpi F --ram", "LowMemory memory profile, tiled decoding")]
    [TestCase("--rpi-lowmem --not-tiled", "LowMemory memory profile, whole decoding")]
    [TestCase("--rpi D --ram", "Ram memory profile, whole decoding")]
    public void The_settings_line_shows_what_the_options_chose(string arguments, string settings) =>
        Assert.That(SettingsOf(arguments.Split(' ')), Does.Contain(settings));

    [Test]
    public void Rpi_A_chooses_the_low_memory_profile_on_a_Raspberry_Pi_only()
    {
        var expected = RaspberryPi.Detect() is null ? "Default memory profile" : "LowMemory memory profile";
        Assert.That(SettingsOf("--rpi", "A"), Does.Contain(expected));
        Assert.That(SettingsOf(), Does.Contain(expected), "A is the default");
    }

    [Test]
    public void Step_files_are_named_after_the_output_file_and_the_image()
    {
        Assert.Multiple(() =>
        {
            Assert.That(SdStepOutputs.ImagePath("out/fox.png", 0), Is.EqualTo("out/fox.png"));
            Assert.That(SdStepOutputs.ImagePath("out/fox.png", 2), Is.EqualTo("out/fox_2.png"));
            Assert.That(SdStepOutputs.StepPath("out/fox.png", 0, "step", 3), Is.EqualTo("out/fox_step_3.png"));
            Assert.That(SdStepOutputs.StepPath("out/fox.png", 1, "preview_x8", 10), Is.EqualTo("out/fox_1_preview_x8_10.png"));
            Assert.That(SdStepOutputs.StepPath("a.b/fox", 0, "preview", 1), Is.EqualTo("a.b/fox_preview_1"));
        });
    }

    [Test]
    public void A_Raspberry_Pi_is_recognized_from_the_device_tree_or_cpuinfo()
    {
        const string piCpuInfo = "processor\t: 0\nBogoMIPS\t: 108.00\nHardware\t: BCM2835\nRevision\t: 902120\nModel\t\t: Raspberry Pi Zero 2 W Rev 1.0\n";
        const string x86CpuInfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 49\nmodel name\t: AMD EPYC 7B12\n";
        Assert.Multiple(() =>
        {
            Assert.That(RaspberryPi.Identify("Raspberry Pi 4 Model B Rev 1.4\0", null), Is.EqualTo("Raspberry Pi 4 Model B Rev 1.4"));
            Assert.That(RaspberryPi.Identify(null, piCpuInfo), Is.EqualTo("Raspberry Pi Zero 2 W Rev 1.0"));
            Assert.That(RaspberryPi.Identify("Pine64 RockPro64 v2.1\0", "Model\t: Pine64\n"), Is.Null);
            Assert.That(RaspberryPi.Identify(null, x86CpuInfo), Is.Null, "x86's lower-case 'model' line is a number, not a board");
            Assert.That(RaspberryPi.Identify(null, null), Is.Null);
        });
    }

    /// <summary>The settings line of a run on tiny-sd15 cancelled before it starts (the line comes before any model runs).</summary>
    private static string SettingsOf(params string[] arguments)
    {
        var models = SharedFixtures.Require("models/tiny-sd15");
        var parse = SdCommand.Create().Parse(["--models-path", models, .. arguments]);
        Assert.That(parse.Errors, Is.Empty);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var output = new StringWriter();
        var console = Console.Out;
        Console.SetOut(output);
        try
        {
            Assert.CatchAsync<OperationCanceledException>(async () =>
                await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }, cancelled.Token));
        }
        finally
        {
            Console.SetOut(console);
        }
        var line = output.ToString().Split('\n').First(l => l.Contains(" layout) in ", StringComparison.Ordinal));
        TestContext.Out.WriteLine(line);
        return line;
    }

    /// <summary>
    /// The parse errors (System.CommandLine's) or the exception the command throws, whose message Program prints; the
    /// placeholder <see cref="Models"/> stands for <paramref name="models"/>.
    /// </summary>
    private static string ErrorOf(string[] arguments, string models)
    {
        var parse = SdCommand.Create().Parse(arguments.Select(a => a == Models ? models : a).ToArray());
        if (parse.Errors.Count > 0) return string.Join("\n", parse.Errors.Select(e => e.Message));
        var error = Assert.Catch(() => parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }));
        Assert.That(error, Is.InstanceOf<ArgumentException>().Or.InstanceOf<IOException>(), "an exception Program reports as a plain error");
        return error!.Message;
    }
}
