using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Parity;

/// <summary>
/// Builds the model a fixture designates, loads its weights through one of the two loaders,
/// feeds the stored inputs and returns every output it computed, by io name.
/// </summary>
public interface IParityRunner
{
    Dictionary<string, Tensor> Run(FixtureDescriptor fixture, WeightSource source, IReadOnlyDictionary<string, Tensor> io);
}

public enum WeightSource
{
    /// <summary>The official-layout <c>.pth</c> through the official-checkpoint loader.</summary>
    OfficialPth,
    /// <summary>The <c>.weights.safetensors</c> twin.</summary>
    Safetensors,
}
