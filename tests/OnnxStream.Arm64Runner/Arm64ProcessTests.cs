using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace OnnxStream.Tests.Arm64Runner;

/// <summary>Guards the point of this runner: the kernel tests above ran as arm64 code on the arm64 natives.</summary>
[TestFixture]
internal sealed class Arm64ProcessTests
{
    /// <summary>ELF e_machine of AArch64.</summary>
    private const ushort EmAArch64 = 183;

    [Test]
    public void The_tests_run_as_an_arm64_process() =>
        Assert.That(RuntimeInformation.ProcessArchitecture, Is.EqualTo(Architecture.Arm64));

    [TestCase("libonnxstream_native.so")]
    [TestCase("libXNNPACK.so.0")]
    [TestCase("libpthreadpool.so.0")]
    [TestCase("libcpuinfo.so.0")]
    public void The_natives_beside_the_runner_are_arm64(string fileName)
    {
        var path = Path.Combine(AppContext.BaseDirectory, fileName);
        Assert.That(File.Exists(path), Is.True, $"{path} is missing");
        Span<byte> header = stackalloc byte[20];
        using (var file = File.OpenRead(path)) file.ReadExactly(header);
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(header[18..]), Is.EqualTo(EmAArch64), $"{path} is not an AArch64 ELF");
    }
}
