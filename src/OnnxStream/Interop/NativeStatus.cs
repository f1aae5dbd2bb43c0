using System.Runtime.InteropServices;

namespace OnnxStream.Interop;

/// <summary>Turns the shim's int32 status codes into exceptions carrying its error text.</summary>
internal static unsafe class NativeStatus
{
    /// <summary>Throws <see cref="NativeKernelException"/> unless <paramref name="status"/> is OK.</summary>
    public static void Check(int status)
    {
        if (status != (int)OsnStatus.Ok)
            throw new NativeKernelException((NativeKernelStatus)status, LastError());
    }

    /// <summary>The calling thread's last error text from the shim.</summary>
    public static string LastError() => Marshal.PtrToStringUTF8((nint)NativeMethods.osn_last_error()) ?? "";
}
