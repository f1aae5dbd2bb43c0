using OnnxStream.Kernels;
using OnnxStream.Memory;

namespace OnnxStream.Tests.Kernels;

/// <summary>Bad arguments come back as exceptions carrying the shim's error text; nothing crashes.</summary>
internal sealed class ErrorPathTests : KernelTestBase
{
    [Test]
    public void A_disposed_pool_or_operator_cannot_be_used()
    {
        var pool = XnnThreadPool.Create(1);
        var op = FullyConnectedOperator.CreateFloat32(2, 2, new float[4]);
        using var buffer = NativeBuffer<float>.Allocate(4);
        pool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => op.Run(pool, 2, buffer, buffer));
        op.Dispose();
        using var livePool = XnnThreadPool.Create(1);
        Assert.Throws<ObjectDisposedException>(() => op.Run(livePool, 2, buffer, buffer));
    }

    [Test]
    public void Invalid_quantization_is_named()
    {
        using var pool = XnnThreadPool.Create(1);
        using var buffer = NativeBuffer<byte>.Allocate(4);
        var error = Assert.Throws<NativeKernelException>(() =>
            ActivationKernels.SigmoidQUInt8(pool, 4, buffer, new Quantization(-1f, 0), buffer, new Quantization(1f / 256, 0)))!;
        Assert.That(error.Status, Is.EqualTo(NativeKernelStatus.InvalidArgument));
        Assert.That(error.Message, Does.Contain("sigmoid input scale"));
    }

    [Test]
    public void Zero_sized_fully_connected_is_rejected()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => FullyConnectedOperator.CreateFloat32(0, 2, []));
        Assert.That(error!.ParamName, Is.EqualTo("inputChannels"));
    }

    [Test]
    public void Convolution_geometry_errors_name_the_geometry()
    {
        var bad = new Convolution2dGeometry(3, 3, 1, 1, StrideHeight: 0);
        var error = Assert.Throws<ArgumentException>(() => Convolution2dOperator.CreateFloat32(bad, new float[9]))!;
        Assert.That(error.Message, Does.Contain("StrideHeight = 0"));
    }

    [Test]
    public void Native_errors_are_per_thread_and_cleared_by_success()
    {
        using var pool = XnnThreadPool.Create(1);
        using var a = NativeBuffer<float>.Allocate(6);
        using var output = NativeBuffer<float>.Allocate(6);
        Assert.Throws<NativeKernelException>(() => BinaryKernels.Run(pool, BinaryOperation.Add, a, [2, 3], a, [2], output));
        Assert.That(Interop.NativeStatus.LastError(), Does.Contain("do not broadcast"));
        var otherThread = Task.Run(Interop.NativeStatus.LastError).Result;
        Assert.That(otherThread, Is.Empty);
        BinaryKernels.Run(pool, BinaryOperation.Add, a, [2, 3], a, [3], output);
        Assert.That(Interop.NativeStatus.LastError(), Is.Empty);
    }
}
