using OnnxStream.Interop;
using OnnxStream.Memory;

namespace OnnxStream.Kernels;

/// <summary>
/// output[b, o] = Σᵢ input[b, i] · W[o, i] + bias[o], clamped: the static-weights MatMul/Gemm.
/// Weights are [outputChannels, inputChannels] (Gemm transB, torch Linear), or
/// [inputChannels, outputChannels] (ONNX MatMul's B) with <c>transposeWeights</c>. Output rows are
/// <see cref="OutputStride"/> elements apart, so an operator of some output channels can write them into wider rows.
/// </summary>
public sealed unsafe class FullyConnectedOperator : PreparedOperator
{
    private FullyConnectedOperator(OsnOperatorHandle handle, KernelDataType type, int inputChannels, int outputChannels, int outputStride)
        : base(handle, type)
    {
        InputChannels = inputChannels;
        OutputChannels = outputChannels;
        OutputStride = outputStride == 0 ? outputChannels : outputStride;
    }

    /// <summary>Input features per row.</summary>
    public int InputChannels { get; }

    /// <summary>Output features per row.</summary>
    public int OutputChannels { get; }

    /// <summary>Elements from one output row to the next (at least <see cref="OutputChannels"/>).</summary>
    public int OutputStride { get; }

    /// <summary>Packs float32 weights (and an optional bias) into a float32 operator.</summary>
    public static FullyConnectedOperator CreateFloat32(int inputChannels, int outputChannels, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> bias = default, bool transposeWeights = false,
        float outputMin = float.NegativeInfinity, float outputMax = float.PositiveInfinity, int outputStride = 0)
    {
        CheckWeights(inputChannels, outputChannels, weights.Length, bias.Length, outputStride);
        fixed (float* w = weights)
        fixed (float* b = bias)
        {
            NativeStatus.Check(NativeMethods.osn_fully_connected_create_f32((nuint)inputChannels, (nuint)outputChannels,
                (nuint)outputStride, w, b, outputMin, outputMax, Flags(transposeWeights), out var handle));
            return new FullyConnectedOperator(handle, KernelDataType.Float32, inputChannels, outputChannels, outputStride);
        }
    }

    /// <summary>Packs float16 weights (and an optional bias) into a float16 operator (needs f16 hardware).</summary>
    public static FullyConnectedOperator CreateFloat16(int inputChannels, int outputChannels, ReadOnlySpan<Half> weights,
        ReadOnlySpan<Half> bias = default, bool transposeWeights = false,
        float outputMin = float.NegativeInfinity, float outputMax = float.PositiveInfinity, int outputStride = 0)
    {
        CheckWeights(inputChannels, outputChannels, weights.Length, bias.Length, outputStride);
        fixed (Half* w = weights)
        fixed (Half* b = bias)
        {
            NativeStatus.Check(NativeMethods.osn_fully_connected_create_f16((nuint)inputChannels, (nuint)outputChannels,
                (nuint)outputStride, (ushort*)w, (ushort*)b, outputMin, outputMax, Flags(transposeWeights), out var handle));
            return new FullyConnectedOperator(handle, KernelDataType.Float16, inputChannels, outputChannels, outputStride);
        }
    }

    /// <summary>
    /// Packs uint8 weights into a quantized operator. <paramref name="bias"/> is int32 in units of
    /// input.Scale × weightsQuantization.Scale.
    /// </summary>
    public static FullyConnectedOperator CreateQUInt8(int inputChannels, int outputChannels, Quantization input,
        Quantization weightsQuantization, ReadOnlySpan<byte> weights, ReadOnlySpan<int> bias, Quantization output,
        bool transposeWeights = false)
    {
        CheckWeights(inputChannels, outputChannels, weights.Length, bias.Length, 0);
        fixed (byte* w = weights)
        fixed (int* b = bias)
        {
            NativeStatus.Check(NativeMethods.osn_fully_connected_create_qu8((nuint)inputChannels, (nuint)outputChannels, 0,
                input.ToNative(), weightsQuantization.ToNative(), w, b, output.ToNative(), Flags(transposeWeights),
                out var handle));
            return new FullyConnectedOperator(handle, KernelDataType.QUInt8, inputChannels, outputChannels, 0);
        }
    }

    /// <summary>Computes <paramref name="batchSize"/> rows: input [batchSize, InputChannels] → output [batchSize, OutputChannels] (rows <see cref="OutputStride"/> apart).</summary>
    public void Run<T>(XnnThreadPool pool, int batchSize, NativeBuffer<T> input, NativeBuffer<T> output) where T : unmanaged
    {
        CheckElementType<T>();
        ArgumentOutOfRangeException.ThrowIfNegative(batchSize);
        KernelDataTypes.CheckLength(nameof(input), input, (long)batchSize * InputChannels);
        KernelDataTypes.CheckLength(nameof(output), output, batchSize == 0 ? 0 : (long)(batchSize - 1) * OutputStride + OutputChannels);
        lock (RunLock)
            NativeStatus.Check(NativeMethods.osn_fully_connected_run(Handle, (nuint)batchSize, input.Pointer, output.Pointer, pool.Handle));
    }

    private static uint Flags(bool transposeWeights) => transposeWeights ? (uint)OsnFlag.TransposeWeights : 0;

    private static void CheckWeights(int inputChannels, int outputChannels, int weights, int bias, int outputStride)
    {
        if (outputStride != 0 && outputStride < outputChannels)
            throw new ArgumentOutOfRangeException(nameof(outputStride), $"The output stride {outputStride} is below the {outputChannels} output channels.");
        ArgumentOutOfRangeException.ThrowIfLessThan(inputChannels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outputChannels, 1);
        if (weights != (long)inputChannels * outputChannels)
            throw new ArgumentException($"Fully connected {inputChannels}→{outputChannels} needs {(long)inputChannels * outputChannels} weights, got {weights}.", nameof(weights));
        if (bias != 0 && bias != outputChannels)
            throw new ArgumentException($"Fully connected bias must be empty or hold {outputChannels} values, got {bias}.", nameof(bias));
    }
}
