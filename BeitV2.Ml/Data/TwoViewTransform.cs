using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// BEiT v2's MIM pretraining augmentation (<c>DataAugmentationForBEiT</c> in unilm beit2/datasets.py): one common
/// <c>ColorJitter(0.4, 0.4, 0.4)</c> → <c>RandomHorizontalFlip(0.5)</c> → random resized crop box, shared
/// by two outputs: the model view (size S, bicubic, ToTensor + Normalize) and the tokenizer view
/// (size S2, bicubic, ToTensor only, [0,1]).
/// </summary>
/// <remarks>
/// The reference flips the whole image and then draws the crop box on the flipped image. Drawing
/// box b on the flipped image equals cropping the mirrored box from the original and flipping the
/// crop (a copy, so bit-exact); that is what is done here, which avoids copying the whole image.
/// <see cref="TwoViews.Crop"/> reports the mirrored box, i.e. where the views come from in the
/// original. The crop box follows <see cref="RandomResizedCrop.GetParams"/> (scale (min_crop_scale, 1),
/// ratio (3/4, 4/3)). The PRETRAINING.md commands use bicubic for both views; the script's default
/// for the second view (lanczos) is not offered.
/// </remarks>
public sealed class TwoViewTransform : ISampleTransform
{
    /// <summary>Creates the transform.</summary>
    /// <param name="size">Model view side (<c>--input_size</c>, 224).</param>
    /// <param name="secondSize">Tokenizer view side (<c>--second_input_size</c>, 224).</param>
    /// <param name="minCropScale">Smallest crop area fraction (<c>--min_crop_scale</c>, 0.08).</param>
    /// <param name="jitter">Common colour jitter; null for none. Use <see cref="ColorJitter.Pretraining"/> for the recipe.</param>
    /// <param name="flipProbability">Horizontal flip probability (0.5).</param>
    /// <param name="normalization">Model view statistics; <see cref="PixelNormalization.ImageNet"/> when null.</param>
    public TwoViewTransform(int size = 224, int secondSize = 224, double minCropScale = 0.08,
        ColorJitter? jitter = null, double flipProbability = 0.5, PixelNormalization? normalization = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(secondSize);
        Crop = new RandomResizedCrop(size, minCropScale, 1.0);
        SecondSize = secondSize;
        Jitter = jitter;
        Flip = new RandomHorizontalFlip(flipProbability);
        Normalization = normalization ?? PixelNormalization.ImageNet;
    }

    /// <summary>The reference recipe: jitter 0.4/0.4/0.4, flip 0.5, scale (0.08, 1), ImageNet mean/std.</summary>
    public static TwoViewTransform Pretraining(int size = 224, int secondSize = 224) =>
        new(size, secondSize, 0.08, ColorJitter.Pretraining);

    /// <summary>The crop (box distribution and model view size).</summary>
    public RandomResizedCrop Crop { get; }

    /// <summary>The common jitter, or null.</summary>
    public ColorJitter? Jitter { get; }

    /// <summary>The common flip.</summary>
    public RandomHorizontalFlip Flip { get; }

    /// <summary>Model view statistics.</summary>
    public PixelNormalization Normalization { get; }

    /// <inheritdoc/>
    public int Size => Crop.Size;

    /// <summary>Tokenizer view side.</summary>
    public int SecondSize { get; }

    int? ISampleTransform.SecondSize => SecondSize;

    /// <inheritdoc/>
    public bool ProducesMask => false;

    /// <summary>Makes both 8-bit views (random draws in the reference order: jitter, flip, crop).</summary>
    public TwoViews Views(RgbBuffer image, Random random)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(random);
        ColorJitterParameters? jitter = Jitter?.Draw(random);
        if (jitter is not null) image = ColorJitter.Apply(image, jitter);
        bool flipped = Flip.Draw(random);
        var box = Crop.GetParams(image.Width, image.Height, random);
        if (flipped) box = box with { Left = image.Width - box.Right, Right = image.Width - box.Left };
        var crop = PixelOps.Crop(image, box);
        if (flipped) crop = PixelOps.FlipHorizontal(crop);
        return new TwoViews(
            PilResize.Resize(crop, Size, Size),
            PilResize.Resize(crop, SecondSize, SecondSize),
            box, flipped, jitter);
    }

    /// <inheritdoc/>
    public PreparedSample Apply(ImageSample sample, Random random)
    {
        ArgumentNullException.ThrowIfNull(sample);
        var views = Views(sample.Image, random);
        return new PreparedSample(
            PixelOps.ToChw(views.ModelView, Normalization), sample.Label,
            secondPixels: PixelOps.ToChw(views.TokenizerView, null));
    }
}
