namespace OnnxStream.Operators;

/// <summary>ONNX Or: logical a ∨ b of two bool tensors with broadcasting (any nonzero byte counts as true).</summary>
internal sealed class OrOperator : LogicalBinaryOperator<OrOperator.Disjunction>
{
    /// <summary>a ∨ b on bool bytes.</summary>
    internal readonly struct Disjunction : Broadcasting.IBinaryOp<byte, byte, byte>
    {
        public static byte Apply(byte a, byte b) => (a != 0 | b != 0) ? (byte)1 : (byte)0;
    }
}
