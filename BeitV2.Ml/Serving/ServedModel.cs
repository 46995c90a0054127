using BeitV2.Ml.Checkpoints;
using static TorchSharp.torch;

namespace BeitV2.Ml.Serving;

/// <summary>
/// A loaded model as the inference endpoints use it: the input it expects (<see cref="Preprocessing"/>, applied
/// once before the batch is built) and one typed method per operation it serves, each taking a batch
/// (B, 3, S, S) of preprocessed pixels and returning one result per image, copied to the CPU. Serving writes
/// no state: concurrent batches of different requests share the module.
/// </summary>
public abstract class ServedModel : IDisposable
{
    protected ServedModel(nn.Module module, ModelPreprocessing preprocessing, int imageSize)
    {
        preprocessing.Validate(imageSize);
        Module = module;
        Preprocessing = preprocessing;
        Device = module.parameters().FirstOrDefault()?.device ?? CPU;
    }

    public nn.Module Module { get; }
    public ModelPreprocessing Preprocessing { get; }
    /// <summary>Where the weights live (fixed once loaded); looked up once instead of on every batch.</summary>
    public Device Device { get; }
    /// <summary>The operations this model serves, the first being its main one (warm-up runs it).</summary>
    public abstract IReadOnlyList<ServedOperation> Operations { get; }

    public virtual TokensResult[] Tokens(Tensor batch) => throw Unsupported(Operation.Tokens);
    public virtual FeaturesResult[] Features(Tensor batch) => throw Unsupported(Operation.Features);
    public virtual ClassProbabilities[] Classify(Tensor batch) => throw Unsupported(Operation.Classify);
    public virtual ClassMap[] Segment(Tensor batch) => throw Unsupported(Operation.Segment);

    public void Dispose() => Module.Dispose();

    private NotSupportedException Unsupported(Operation operation) =>
        new($"A {Module.GetName()} model does not serve {operation.Name()}.");

    /// <summary>Row <paramref name="i"/> of a (B, …) result as float32 (call on a tensor already on the CPU: one copy per batch).</summary>
    protected static float[] Row(Tensor t, long i) => t[i].to_type(ScalarType.Float32).contiguous().data<float>().ToArray();

    /// <summary>One result per row of a (B, …) CPU tensor.</summary>
    protected static T[] PerImage<T>(Tensor batch, Func<long, T> row)
    {
        var result = new T[batch.shape[0]];
        for (var i = 0; i < result.Length; i++) result[i] = row(i);
        return result;
    }
}
