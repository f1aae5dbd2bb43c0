using OnnxStream.Operators;

namespace OnnxStream.Tests.Operators;

/// <summary>The default registry lists its operators by hand (for Native AOT): none may be forgotten.</summary>
internal sealed class OperatorRegistryTests
{
    [Test]
    public void Every_operator_class_is_registered_under_its_name_minus_Operator()
    {
        var implementations = typeof(IOperator).Assembly.GetTypes()
            .Where(type => type is { IsClass: true, IsAbstract: false } && typeof(IOperator).IsAssignableFrom(type))
            .ToList();
        Assert.That(implementations, Has.Count.GreaterThan(50), "the scan found too few operators to be trusted");
        Assert.Multiple(() =>
        {
            foreach (var type in implementations)
            {
                Assert.That(type.Name, Does.EndWith("Operator"), $"{type.FullName} implements IOperator");
                var opType = type.Name.EndsWith("Operator", StringComparison.Ordinal) ? type.Name[..^"Operator".Length] : type.Name;
                Assert.That(OperatorRegistry.Default.TryGet(opType, out var registered) ? registered.GetType() : null, Is.EqualTo(type),
                    $"{type.Name} is not registered as '{opType}': add it to OperatorRegistry's list");
            }
        });
        Assert.That(OperatorRegistry.Default.OpTypes.Count(), Is.EqualTo(implementations.Count));
    }
}
