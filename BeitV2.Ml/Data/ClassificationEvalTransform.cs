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
    /// <param name="fullResize">resize the whole image to S×S (aspect ratio not kept) instead of the shorter-side resize and
    /// centre crop: the <c>squash</c> crop mode of a model package's preprocessing, applied as serving applies it.</param>
    public ClassificationEvalTransform(EvalTransform transform, bool normalize = true, bool fullResize = false)
    {
        ArgumentNullException.ThrowIfNull(transform);
        Transform = transform;
        Normalize = normalize;
        FullResize = fullResize;
    }

    /// <summary>The wrapped transform.</summary>
    public EvalTransform Transform { get; }

    /// <summary>Whether the output is normalised with <see cref="EvalTransform.Normalization"/>.</summary>
    public bool Normalize { get; }

    /// <summary>Whether the whole image is resized to S×S (no crop).</summary>
    public bool FullResize { get; }

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
        var view = !FullResize ? Transform.CropU8(sample.Image)
            : sample.Width == Size && sample.Height == Size ? sample.Image
            : PilResize.Resize(sample.Image, Size, Size);
        return new PreparedSample(Transform.ToChw(view, Normalize), sample.Label);
    }
}
