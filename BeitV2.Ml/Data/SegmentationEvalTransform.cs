using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// A deterministic segmentation validation transform: the image is resized (aspect ratio not kept)
/// to S×S with Pillow's bicubic filter and normalised; the mask is resized to S×S with torch's
/// nearest indexing. This is the simple whole-image path of the service
/// (<see cref="Imaging.Rendering.ClassMapResizer.FromFullImageResize"/> maps predictions back), not
/// mmseg's sliding-window evaluation at the original resolution. The <see cref="Random"/> is ignored.
/// </summary>
public sealed class SegmentationEvalTransform : ISampleTransform
{
    /// <summary>Creates the transform.</summary>
    public SegmentationEvalTransform(int size, PixelNormalization? normalization = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Size = size;
        Normalization = normalization ?? PixelNormalization.ImageNet;
    }

    /// <inheritdoc/>
    public int Size { get; }

    /// <summary>Mean/std of the output.</summary>
    public PixelNormalization Normalization { get; }

    /// <inheritdoc/>
    public int? SecondSize => null;

    /// <inheritdoc/>
    public bool ProducesMask => true;

    /// <inheritdoc/>
    public PreparedSample Apply(ImageSample sample, Random random)
    {
        ArgumentNullException.ThrowIfNull(sample);
        var mask = sample.Mask ?? throw new ArgumentException("A segmentation transform needs a sample with a mask.", nameof(sample));
        var image = PilResize.Resize(sample.Image, Size, Size);
        return new PreparedSample(PixelOps.ToChw(image, Normalization), sample.Label,
            PixelOps.ResizeNearest(mask, sample.Width, sample.Height, Size, Size));
    }
}
