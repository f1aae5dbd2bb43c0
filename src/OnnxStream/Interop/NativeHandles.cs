using System.Runtime.InteropServices;

namespace OnnxStream.Interop;

/// <summary>Owns an <c>osn_threadpool*</c>; the generated imports take and return it.</summary>
internal sealed class OsnThreadpoolHandle : SafeHandle
{
    public OsnThreadpoolHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle() => NativeMethods.osn_threadpool_destroy(handle) == (int)OsnStatus.Ok;
}

/// <summary>Owns an <c>osn_operator*</c> (a prepared fully-connected or convolution operator).</summary>
internal sealed class OsnOperatorHandle : SafeHandle
{
    public OsnOperatorHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle() => NativeMethods.osn_operator_destroy(handle) == (int)OsnStatus.Ok;
}
