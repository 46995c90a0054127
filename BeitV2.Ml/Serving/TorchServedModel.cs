using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Precision;
using static TorchSharp.torch;

namespace BeitV2.Ml.Serving;

/// <summary>
/// A model served by TorchSharp: each batch is copied once into a tensor, moved to the model's device and run under
/// <c>inference_mode</c>, in a dispose scope (every intermediate tensor freed with the batch) and in the configured
/// autocast <see cref="Precision"/>; results are copied to the CPU inside the batch. Subclasses implement the
/// operations on that tensor.
/// </summary>
public abstract class TorchServedModel : ServedModel
{
    protected TorchServedModel(nn.Module module, ModelPreprocessing preprocessing, int imageSize) : base(preprocessing, imageSize)
    {
        Module = module;
        Device = module.parameters().FirstOrDefault()?.device ?? CPU;
    }

    public nn.Module Module { get; }
    /// <summary>Where the weights live (fixed once loaded); looked up once instead of on every batch.</summary>
    public Device Device { get; }
    /// <summary>The autocast precision of every batch (<c>Ml:InferencePrecision</c>); set before the model serves.</summary>
    public ComputePrecision Precision { get; set; } = ComputePrecision.Fp32;

    public override ServingEngine Engine => ServingEngine.Torch;
    public override string Description => Module.GetName();

    public sealed override TokensResult[] Tokens(ImageBatch batch) => Run(batch, Tokens);
    public sealed override FeaturesResult[] Features(ImageBatch batch) => Run(batch, Features);
    public sealed override ClassProbabilities[] Classify(ImageBatch batch) => Run(batch, Classify);
    public sealed override ClassMap[] Segment(ImageBatch batch) => Run(batch, Segment);

    protected virtual TokensResult[] Tokens(Tensor batch) => throw Unsupported(Operation.Tokens);
    protected virtual FeaturesResult[] Features(Tensor batch) => throw Unsupported(Operation.Features);
    protected virtual ClassProbabilities[] Classify(Tensor batch) => throw Unsupported(Operation.Classify);
    protected virtual ClassMap[] Segment(Tensor batch) => throw Unsupported(Operation.Segment);

    public override void Dispose() => Module.Dispose();

    private T[] Run<T>(ImageBatch batch, Func<Tensor, T[]> operation)
    {
        using (inference_mode())
        using (NewDisposeScope())
        using (Autocast.Enable(Precision))
        {
            var input = empty(batch.Shape);
            input.data<float>().CopyFrom(batch.Pixels);
            if (Device.type != TorchSharp.DeviceType.CPU) input = input.to(Device);
            return operation(input);
        }
    }

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
