namespace BeitV2.Ml.Tests.Models;

/// <summary>
/// Tests that compare exact draws of libtorch's process-wide generator (<c>torch.manual_seed</c>, then model
/// constructors, which take no generator): xUnit runs them after the parallel tests, one at a time, so no other test
/// draws in between.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalGeneratorCollection
{
    public const string Name = "Global torch generator";
}
