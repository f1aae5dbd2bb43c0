using System.Text;
using OnnxStream.Cli;
using OnnxStream.Tests.Weights;

namespace OnnxStream.Tests.Cli;

/// <summary>Bad user files and paths end in one line <c>error: ...</c> naming the file and exit code 1, never a stack trace.</summary>
internal sealed class CliErrorTests
{
    private string _folder = null!;

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("onnxstream-cli-errors-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    [TestCase("(99999999999999999999, 3)", "'99999999999999999999'")]
    [TestCase("(3000000000, 3)", "'3000000000'")]
    [TestCase("(2, -3)", "'-3'")]
    [TestCase("(65536, 65536, 2)", "more than 2147483647 elements")]
    public void Run_refuses_an_npy_shape_out_of_range(string shape, string message)
    {
        var npy = WriteNpy("huge.npy", $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}", dataBytes: 24);
        CliRunner.AssertUserError(RunTinyModel(npy), npy, message);
    }

    [Test]
    public void Run_refuses_an_npy_header_length_of_0xFFFFFFF0()
    {
        var npy = WriteNpy("long-header.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", dataBytes: 24, version: 2, headerLength: 0xFFFFFFF0);
        CliRunner.AssertUserError(RunTinyModel(npy), npy, "header length 4294967280");
    }

    [Test]
    public void Run_refuses_truncated_npy_data()
    {
        var npy = WriteNpy("short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", dataBytes: 10);
        CliRunner.AssertUserError(RunTinyModel(npy), npy, "shorter than");
    }

    [Test]
    public void Sd_decode_latents_refuses_an_npy_header_length_of_0xFFFFFFF0()
    {
        var npy = WriteNpy("latent.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 8, 8), }", dataBytes: 1024, version: 3, headerLength: 0xFFFFFFF0);
        CliRunner.AssertUserError(CliRunner.Run("sd", "--models-path", FakeDiffusersFolder(), "--decode-latents", npy, "--output", Path.Combine(_folder, "image.png")),
            npy, "header length 4294967280");
        Assert.That(File.Exists(Path.Combine(_folder, "image.png")), Is.False);
    }

    [TestCase("vocab.json", "{\"a\": 1,")]
    [TestCase("vocab.json", "[1, 2]")]
    [TestCase("merges.txt", "#version: 0.2\nonlyone\n")]
    public void Sd_names_a_bad_tokenizer_file(string file, string content)
    {
        var models = FakeDiffusersFolder();
        File.WriteAllText(Path.Combine(models, "tokenizer", file), content);
        CliRunner.AssertUserError(Sd(models), Path.Combine(models, "tokenizer", file));
    }

    [TestCase("{\"beta_schedule\": ")]
    [TestCase("{\"beta_start\": \"high\"}")]
    public void Sd_names_a_bad_scheduler_config(string content)
    {
        var models = FakeDiffusersFolder();
        File.WriteAllText(Path.Combine(models, "scheduler", "scheduler_config.json"), content);
        CliRunner.AssertUserError(Sd(models), Path.Combine(models, "scheduler", "scheduler_config.json"));
    }

    [TestCase("{\"Model\": ", "line 1")]
    [TestCase("[1, 2, 3]", "not a bench --json report")]
    [TestCase("null", "not a bench --json report")]
    public void Bench_report_names_a_malformed_json_file(string content, string message)
    {
        var json = Path.Combine(_folder, "report.json");
        File.WriteAllText(json, content);
        CliRunner.AssertUserError(CliRunner.Run("bench-report", "--json", json), json, message);
    }

    [Test]
    public void Run_checks_its_output_folder_before_loading_the_model()
    {
        var file = Path.Combine(_folder, "a-file");
        File.WriteAllText(file, "");
        CliRunner.AssertUserError(CliRunner.Run("run", "--model", Path.Combine(_folder, "no-model"), "--output-dir", file), file);
    }

    [Test]
    public void Sd_refuses_an_output_that_is_a_directory_before_any_work()
    {
        // The models folder does not exist: the output is checked first.
        CliRunner.AssertUserError(CliRunner.Run("sd", "--models-path", Path.Combine(_folder, "no-models"), "--output", _folder), _folder, "is a directory");
    }

    [Test]
    public void Calibrate_and_bench_check_their_output_files_before_any_work()
    {
        // Neither the model nor the inputs exist: the output, a directory, is refused first.
        CliRunner.AssertUserError(CliRunner.Run("calibrate", "--model", Path.Combine(_folder, "no-model"), "--inputs", _folder, "--out", _folder),
            _folder, "is a directory");
        CliRunner.AssertUserError(CliRunner.Run("bench", "--model", Path.Combine(_folder, "no-model.onnx"), "--json", _folder), _folder, "is a directory");
    }

    [Test]
    public void Only_exceptions_about_input_are_user_errors()
    {
        Assert.Multiple(() =>
        {
            Assert.That(CliApp.IsUserError(new InvalidDataException("x")), Is.True);
            Assert.That(CliApp.IsUserError(new FormatException("x")), Is.True);
            Assert.That(CliApp.IsUserError(new FileNotFoundException("x")), Is.True);
            Assert.That(CliApp.IsUserError(new NullReferenceException()), Is.False);
            Assert.That(CliApp.IsUserError(new InvalidOperationException()), Is.False);
            Assert.That(CliApp.IsUserError(new OverflowException()), Is.False);
            Assert.That(CliApp.IsUserError(new IndexOutOfRangeException()), Is.False);
        });
    }

    [Test]
    public void A_cancelled_command_says_so_and_exits_130()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var output = Path.Combine(_folder, "synth");
        var (exitCode, error) = CliRunner.Run(cancelled.Token, "synth", "--arch", "sd15-vae-decoder", "--scale", "tiny", "--out", output);
        Assert.That(exitCode, Is.EqualTo(CliApp.CancelledExitCode));
        Assert.That(error.Trim(), Is.EqualTo("cancelled"));
        Assert.That(Directory.Exists(output) ? Directory.GetFileSystemEntries(output) : [], Is.Empty, "no partial file");
    }

    private (int ExitCode, string Error) RunTinyModel(string npy)
    {
        using var model = new TinyWeightsModel();
        return CliRunner.Run("run", "--model", model.Folder, "--input", $"x={npy}", "--output-dir", Path.Combine(_folder, "out"), "--threads", "1");
    }

    private (int ExitCode, string Error) Sd(string models) =>
        CliRunner.Run("sd", "--models-path", models, "--steps", "1", "--seed", "1", "--threads", "1", "--output", Path.Combine(_folder, "image.png"));

    /// <summary>
    /// A diffusers-layout SD 1.5 folder whose models are empty files and whose tokenizer is a stub (the errors under test
    /// come before any model loads).
    /// </summary>
    private string FakeDiffusersFolder()
    {
        var root = Path.Combine(_folder, "models");
        foreach (var component in new[] { "text_encoder", "unet", "vae_decoder" })
        {
            Directory.CreateDirectory(Path.Combine(root, component));
            File.WriteAllBytes(Path.Combine(root, component, "model.onnx"), []);
        }
        Directory.CreateDirectory(Path.Combine(root, "tokenizer"));
        Directory.CreateDirectory(Path.Combine(root, "scheduler"));
        File.WriteAllText(Path.Combine(root, "tokenizer", "vocab.json"), "{\"a\": 0, \"b\": 1}");
        File.WriteAllText(Path.Combine(root, "tokenizer", "merges.txt"), "#version: 0.2\na b\n");
        File.WriteAllText(Path.Combine(root, "scheduler", "scheduler_config.json"), "{}");
        return root;
    }

    /// <summary>A .npy file with this header dictionary, padded as NumPy pads it, then <paramref name="dataBytes"/> zero bytes.</summary>
    private string WriteNpy(string name, string dictionary, int dataBytes, int version = 1, uint? headerLength = null)
    {
        var header = Encoding.Latin1.GetBytes(dictionary + "\n");
        using var stream = new MemoryStream();
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)version, 0]);
        var length = headerLength ?? (uint)header.Length;
        if (version == 1) stream.Write(BitConverter.GetBytes((ushort)length));
        else stream.Write(BitConverter.GetBytes(length));
        stream.Write(header);
        stream.Write(new byte[dataBytes]);
        var path = Path.Combine(_folder, name);
        File.WriteAllBytes(path, stream.ToArray());
        return path;
    }
}
