namespace OnnxStream.Operators;

/// <summary>ONNX And: logical a ∧ b of two bool tensors with broadcasting (any nonzero byte counts as true).</summary>
internal sealed class AndOperator : LogicalBinaryOperator<AndOperator.Conjunction>
{
    /// <summary>a ∧ b on bool bytes.</summary>
    internal readonly struct Conjunction : Broadcasting.IBinaryOp<byte, byte, byte>
    {
        public static byte Apply(byte a, byte b) => (a != 0 & b != 0) ? (byte)1 : (byte)0;
    }
}
