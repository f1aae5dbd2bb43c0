using OnnxStream.Interop;

namespace OnnxStream;

/// <summary>Why a native kernel call failed (the shim's <c>osn_status</c>, whose values these are).</summary>
public enum NativeKernelStatus
{
    /// <summary>No failure.</summary>
    Ok = OsnStatus.Ok,
    /// <summary>A size, shape, pointer or parameter was wrong.</summary>
    InvalidArgument = OsnStatus.InvalidArgument,
    /// <summary>The pinned XNNPACK has no kernel for this data type or parameter combination.</summary>
    Unsupported = OsnStatus.Unsupported,
    /// <summary>The kernel needs an instruction set this processor lacks (e.g. f16 without AVX2).</summary>
    UnsupportedHardware = OsnStatus.UnsupportedHardware,
    /// <summary>Native memory could not be allocated.</summary>
    OutOfMemory = OsnStatus.OutOfMemory,
    /// <summary>XNNPACK could not be initialized.</summary>
    Uninitialized = OsnStatus.Uninitialized,
    /// <summary>An unexpected XNNPACK failure.</summary>
    InternalError = OsnStatus.InternalError,
}

/// <summary>A native kernel call failed; the message is the shim's error text.</summary>
public sealed class NativeKernelException : Exception
{
    /// <summary>Creates the exception for a failed call.</summary>
    public NativeKernelException(NativeKernelStatus status, string message)
        : base($"{message} ({status})") => Status = status;

    /// <summary>The shim's status code.</summary>
    public NativeKernelStatus Status { get; }
}
