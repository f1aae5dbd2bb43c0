using System.Runtime.InteropServices;
using OnnxStream.Interop;

namespace OnnxStream.Kernels;

/// <summary>Facts about the loaded native library and the memory XNNPACK holds.</summary>
public static unsafe class NativeRuntime
{
    /// <summary>The XNNPACK commit the native library was built against.</summary>
    public static string XnnpackCommit => Marshal.PtrToStringUTF8((nint)NativeMethods.osn_xnnpack_commit()) ?? "";

    /// <summary>Whether XNNPACK's f16 kernels run on this processor (x86 AVX2, arm64 FP16 arithmetic).</summary>
    public static bool SupportsFloat16
    {
        get
        {
            uint bits;
            NativeStatus.Check(NativeMethods.osn_capabilities(&bits));
            return (bits & (uint)OsnCapability.F16) != 0;
        }
    }

    /// <summary>Bytes XNNPACK holds now (packed weights, operator state) and its peak since the last reset.</summary>
    public static (long Current, long Peak) XnnpackMemory
    {
        get
        {
            long current, peak;
            NativeStatus.Check(NativeMethods.osn_memory_stats(&current, &peak));
            return (current, peak);
        }
    }

    /// <summary>Restarts XNNPACK's peak byte tracking from its current bytes.</summary>
    public static void ResetXnnpackPeak() => NativeStatus.Check(NativeMethods.osn_reset_peak_bytes());
}
