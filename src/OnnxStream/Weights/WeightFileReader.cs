using Microsoft.Win32.SafeHandles;
using OnnxStream.Graph;
using OnnxStream.Memory;
using OnnxStream.Tensors;

namespace OnnxStream.Weights;

/// <summary>Reads a weight's bytes from its file (or its inline bytes) straight into a new native tensor.</summary>
public static class WeightFileReader
{
    /// <summary>Reads <paramref name="weight"/>; the caller owns the tensor.</summary>
    public static Tensor Read(TensorDescriptor weight, NativeAllocator allocator)
    {
        var location = weight.Location ?? throw new ArgumentException($"'{weight.Name}' is not a weight.", nameof(weight));
        var tensor = Tensor.Allocate(weight.WeightType!.Value, weight.Shape, allocator, weight.Quantization);
        if (location.Inline is { } inline)
        {
            if (inline.Length != tensor.ByteCount)
            {
                tensor.Dispose();
                throw new ModelFormatException($"constant '{weight.Name}' from {location.Path}: {inline.Length} bytes do not fill {tensor}");
            }
            inline.CopyTo(tensor.Bytes);
            return tensor;
        }
        try
        {
            using SafeFileHandle file = File.OpenHandle(location.Path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            var target = tensor.Bytes;
            if (target.Length != location.Length)
                throw new ModelFormatException($"weight '{weight.Name}': {location.Length} bytes in {location.Path} do not fill {tensor}");
            var done = 0;
            while (done < target.Length)
            {
                var read = RandomAccess.Read(file, target[done..], location.Offset + done);
                if (read == 0)
                    throw new ModelFormatException($"weight file {location.Path} ended after {done} of {target.Length} bytes of '{weight.Name}' (truncated?)");
                done += read;
            }
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }
}
