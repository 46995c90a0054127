using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// The training transform of image classification and of tokenizer training: <c>RandomResizedCrop(S,
/// scale, ratio, bicubic)</c> → <c>RandomHorizontalFlip(p)</c> → optional <c>ColorJitter</c> →
/// <c>ToTensor</c> → optional <c>Normalize</c>, in that order (timm's <c>transforms_imagenet_train</c>
/// without the RandAugment, random erasing and mixup/cutmix of the fine-tuning recipe; the VQ-KD recipe
/// (run_vqkd_training.py) has no
/// jitter and no Normalize).
/// </summary>
public sealed class ClassificationTrainTransform : ISampleTransform
{
    /// <summary>Creates the transform.</summary>
    /// <param name="crop">The random resized crop (its <see cref="RandomResizedCrop.Size"/> is the output size).</param>
    /// <param name="flipProbability">Horizontal flip probability.</param>
    /// <param name="jitter">Colour jitter after the flip, or null.</param>
    /// <param name="normalization">Mean/std, or null for [0,1] output (the tokenizer's input).</param>
    public ClassificationTrainTransform(RandomResizedCrop crop, double flipProbability = 0.5,
        ColorJitter? jitter = null, PixelNormalization? normalization = null)
    {
        ArgumentNullException.ThrowIfNull(crop);
        Crop = crop;
        Flip = new RandomHorizontalFlip(flipProbability);
        Jitter = jitter;
        Normalization = normalization;
    }

    /// <summary>The fine-tuning default: RRC(size) with scale (0.08, 1), flip 0.5, ImageNet mean/std.</summary>
    public static ClassificationTrainTransform FineTuning(int size) =>
        new(new RandomResizedCrop(size), 0.5, null, PixelNormalization.ImageNet);

    /// <summary>The VQ-KD training transform (run_vqkd_training.py): RRC(size), flip 0.5, [0,1] output.</summary>
    public static ClassificationTrainTransform Tokenizer(int size) => new(new RandomResizedCrop(size));

    /// <summary>The crop.</summary>
    public RandomResizedCrop Crop { get; }

    /// <summary>The flip.</summary>
    public RandomHorizontalFlip Flip { get; }

    /// <summary>The jitter, or null.</summary>
    public ColorJitter? Jitter { get; }

    /// <summary>Normalisation, or null for [0,1].</summary>
    public PixelNormalization? Normalization { get; }

    /// <inheritdoc/>
    public int Size => Crop.Size;

    /// <inheritdoc/>
    public int? SecondSize => null;

    /// <inheritdoc/>
    public bool ProducesMask => false;

    /// <summary>The augmented 8-bit image (before ToTensor).</summary>
    public RgbBuffer Augment(RgbBuffer image, Random random)
    {
        var view = Crop.Apply(image, random);
        view = Flip.Apply(view, random);
        return Jitter is null ? view : Jitter.Apply(view, random);
    }

    /// <inheritdoc/>
    public PreparedSample Apply(ImageSample sample, Random random)
    {
        ArgumentNullException.ThrowIfNull(sample);
        return new PreparedSample(PixelOps.ToChw(Augment(sample.Image, random), Normalization), sample.Label);
    }
}
