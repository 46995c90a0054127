using BeitV2.Ml.Checkpoints;

namespace BeitV2.Ml.Serving;

/// <summary>
/// A loaded model as the inference endpoints use it, whatever runs it (<see cref="Engine"/>): the input it expects
/// (<see cref="Preprocessing"/>, applied once before the batch is built) and one typed method per operation it
/// serves, each taking a batch of preprocessed pixels (<see cref="ImageBatch"/>, (B, 3, S, S)) and returning one
/// result per image, in batch order, in memory the caller owns. Serving writes no model state: batches of different
/// requests share the model. Implementations: <see cref="TorchServedModel"/> (TorchSharp) and
/// <see cref="Onnx.OnnxServedModel"/> (ONNX Runtime).
/// </summary>
public abstract class ServedModel : IDisposable
{
    /// <exception cref="CheckpointException">the preprocessing does not fit the model's input size.</exception>
    protected ServedModel(ModelPreprocessing preprocessing, int imageSize)
    {
        preprocessing.Validate(imageSize);
        Preprocessing = preprocessing;
    }

    public ModelPreprocessing Preprocessing { get; }
    /// <summary>What runs the forward pass.</summary>
    public abstract ServingEngine Engine { get; }
    /// <summary>The operations this model serves, the first being its main one (warm-up runs it).</summary>
    public abstract IReadOnlyList<ServedOperation> Operations { get; }
    /// <summary>What the model is, for error messages ("BeitVisionTransformer", "vit_cls graph").</summary>
    public abstract string Description { get; }

    public virtual TokensResult[] Tokens(ImageBatch batch) => throw Unsupported(Operation.Tokens);
    public virtual FeaturesResult[] Features(ImageBatch batch) => throw Unsupported(Operation.Features);
    public virtual ClassProbabilities[] Classify(ImageBatch batch) => throw Unsupported(Operation.Classify);
    public virtual ClassMap[] Segment(ImageBatch batch) => throw Unsupported(Operation.Segment);

    public abstract void Dispose();

    protected NotSupportedException Unsupported(Operation operation) => new($"A {Description} model does not serve {operation.Name()}.");
}
