using OnnxStream.Graph;

namespace OnnxStream.Operators;

/// <summary>
/// The kernel of one ONNX operator type. Implementations are stateless: everything a run needs comes
/// through the <see cref="OperatorContext"/>, which also allocates the outputs (their shapes are
/// inferred by the operator from its inputs and attributes, next to the kernel).
/// </summary>
public interface IOperator
{
    /// <summary>Computes the node's outputs from its inputs.</summary>
    void Run(OperatorContext context);

    /// <summary>
    /// Whether input <paramref name="index"/>, when it is a float16 or quantized uint8 weight, should reach
    /// the operator as stored instead of widened to float32 first; the operator then computes as if it had
    /// been widened. Gather does, to widen only the rows it takes from an embedding table.
    /// </summary>
    bool TakesStoredWeight(int index) => false;

    /// <summary>
    /// Whether input <paramref name="index"/>, a weight that the session reads from a file (the Prefetch and NoCache
    /// providers) and that is larger than <see cref="OperatorContext.WeightSliceBytes"/>, may be left unread: the operator
    /// then gets a tensor with its type and shape but no data, and reads the bytes it needs a slice at a time with
    /// <see cref="OperatorContext.WeightReader"/>. Implies <see cref="TakesStoredWeight"/>.
    /// </summary>
    bool ReadsWeightSlices(int index) => false;

    /// <summary>
    /// Whether output 0 may be written over input <paramref name="index"/>: when that input is an activation that dies with
    /// this operation and has the output's type and element count, <see cref="OperatorContext.Output"/> hands its memory
    /// back as the output (with the output's shape). The operator must then read each element before writing the same one
    /// (elementwise operations), or find its output already written (Reshape: see <see cref="OperatorContext.WrittenOver"/>).
    /// </summary>
    bool WritesOverInput(int index) => false;

    /// <summary>
    /// Bytes of scratch memory the operator holds at once while it runs <paramref name="node"/>, beyond its inputs and
    /// outputs (the tensors' sizes from <paramref name="bytes"/>), for <see cref="Graph.ModelSummary"/>'s prediction of a
    /// run's peak. Inputs the operator frees early (<see cref="OperatorContext.ReleaseInput"/>) count as freed when they die
    /// with the operation; an operator that allocates its outputs last may return less than 0.
    /// </summary>
    long ScratchBytes(GraphNode node, Func<TensorDescriptor, long> bytes, Func<int, bool> inputDies) => 0;

    /// <summary>
    /// Whether input <paramref name="index"/> may reach the operator as a quantized uint8 tensor when the session
    /// quantizes activations (an activation, or a uint8 weight as stored); otherwise the session dequantizes it
    /// to float32 first. An operator that takes one runs a uint8 kernel when its operands and
    /// <see cref="OperatorContext.OutputQuantization"/> allow, and otherwise dequantizes it itself.
    /// </summary>
    bool TakesQuantized(int index) => false;
}
