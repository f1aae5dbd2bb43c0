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
}
