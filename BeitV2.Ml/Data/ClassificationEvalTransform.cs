using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// The deterministic evaluation transform (<see cref="EvalTransform"/>: shorter-side bicubic resize to
/// S / crop_pct, centre crop S, ToTensor, Normalize) as an <see cref="ISampleTransform"/>, for
/// validation batches. The <see cref="Random"/> is ignored.
/// </summary>
public sealed class ClassificationEvalTransform : ISampleTransform
{
    /// <summary>Wraps an evaluation transform; <paramref name="normalize"/> false gives [0,1] output.</summary>
    public ClassificationEvalTransform(EvalTransform transform, bool normalize = true)
    {
        ArgumentNullException.ThrowIfNull(transform);
        Transform = transform;
        Normalize = normalize;
    }

    /// <summary>The wrapped transform.</summary>
    public EvalTransform Transform { get; }

    /// <summary>Whether the output is normalised with <see cref="EvalTransform.Normalization"/>.</summary>
    public bool Normalize { get; }

    /// <inheritdoc/>
    public int Size => Transform.InputSize;

    /// <inheritdoc/>
    public int? SecondSize => null;

    /// <inheritdoc/>
    public bool ProducesMask => false;

    /// <inheritdoc/>
    public PreparedSample Apply(ImageSample sample, Random random)
    {
        ArgumentNullException.ThrowIfNull(sample);
        return new PreparedSample(Transform.ToChw(Transform.CropU8(sample.Image), Normalize), sample.Label);
    }
}
