using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// The mmsegmentation ADE20K training pipeline of the unilm beit2/semantic_segmentation configs, scaled to a crop size S:
/// <c>Resize(img_scale=(4S, S), ratio_range=(0.5, 2.0), keep_ratio)</c> → <c>RandomCrop(S,
/// cat_max_ratio=0.75)</c> → <c>RandomFlip(0.5)</c> → <c>Normalize</c> → <c>Pad(S, pad_val=0,
/// seg_pad_val=255)</c>, applied with the same geometry to image and mask (S = 512 gives the reference's
/// (2048, 512) scale).
/// </summary>
/// <remarks>
/// <para>Geometry as in mmseg/mmcv: ratio r uniform in the range, target scale
/// <c>(int(4S·r), int(S·r))</c>, rescale factor <c>min(long/max(h,w), short/min(h,w))</c>, new size
/// <c>int(w·f + 0.5) × int(h·f + 0.5)</c>; crop offsets uniform in <c>0..max(size - S, 0)</c>, redrawn up
/// to ten times while the crop's most frequent class (ignoring 255) covers ≥ cat_max_ratio of its
/// labelled pixels or it holds a single class; flip with probability 0.5; padding at the bottom and
/// right, with 0 <i>after</i> normalisation (the mean colour) and 255 in the mask.</para>
/// <para>Differences: the image is resampled with Pillow's bicubic filter (<see cref="PilResize"/>,
/// antialiased when shrinking) instead of OpenCV's bilinear, and the mask with torch's nearest
/// indexing instead of OpenCV's (they can differ by one source pixel at rare positions);
/// <c>PhotoMetricDistortion</c> is not applied. Only the crop region of the rescaled image is
/// computed (same pixels as a full resize).</para>
/// </remarks>
public sealed class SegmentationTrainTransform : ISampleTransform
{
    private const int CropAttempts = 10;

    /// <summary>Creates the transform.</summary>
    /// <param name="size">Crop size S (the model input side).</param>
    /// <param name="minRatio">Smallest scale ratio (0.5).</param>
    /// <param name="maxRatio">Largest scale ratio (2.0).</param>
    /// <param name="catMaxRatio">Largest share of one class in a crop before it is redrawn; 1 disables the check.</param>
    /// <param name="flipProbability">Horizontal flip probability.</param>
    /// <param name="normalization">Mean/std; <see cref="PixelNormalization.ImageNet"/> when null (mmseg's 0–255 statistics / 255).</param>
    /// <param name="scaleLong">Long side of the base scale; 4·S when null.</param>
    /// <param name="scaleShort">Short side of the base scale; S when null.</param>
    public SegmentationTrainTransform(int size, double minRatio = 0.5, double maxRatio = 2.0, double catMaxRatio = 0.75,
        double flipProbability = 0.5, PixelNormalization? normalization = null, int? scaleLong = null, int? scaleShort = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        if (!(minRatio > 0) || !(maxRatio >= minRatio) || double.IsInfinity(maxRatio))
            throw new ArgumentOutOfRangeException(nameof(minRatio), $"Need 0 < minRatio <= maxRatio, got ({minRatio}, {maxRatio}).");
        if (!(catMaxRatio > 0 && catMaxRatio <= 1))
            throw new ArgumentOutOfRangeException(nameof(catMaxRatio), catMaxRatio, "must be in (0, 1]");
        Size = size;
        MinRatio = minRatio;
        MaxRatio = maxRatio;
        CatMaxRatio = catMaxRatio;
        Flip = new RandomHorizontalFlip(flipProbability);
        Normalization = normalization ?? PixelNormalization.ImageNet;
        ScaleLong = scaleLong ?? 4 * size;
        ScaleShort = scaleShort ?? size;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ScaleLong, nameof(scaleLong));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ScaleShort, nameof(scaleShort));
    }

    /// <inheritdoc/>
    public int Size { get; }

    /// <summary>Smallest scale ratio.</summary>
    public double MinRatio { get; }

    /// <summary>Largest scale ratio.</summary>
    public double MaxRatio { get; }

    /// <summary>Category balance threshold of the crop.</summary>
    public double CatMaxRatio { get; }

    /// <summary>The flip.</summary>
    public RandomHorizontalFlip Flip { get; }

    /// <summary>Mean/std of the output.</summary>
    public PixelNormalization Normalization { get; }

    /// <summary>Long side of the base scale (img_scale[0]).</summary>
    public int ScaleLong { get; }

    /// <summary>Short side of the base scale (img_scale[1]).</summary>
    public int ScaleShort { get; }

    /// <inheritdoc/>
    public int? SecondSize => null;

    /// <inheritdoc/>
    public bool ProducesMask => true;

    /// <summary>mmcv's <c>rescale_size</c> for a keep-ratio resize into the (long, short) scale.</summary>
    public static (int Width, int Height) RescaleSize(int width, int height, int scaleLong, int scaleShort)
    {
        double maxLong = Math.Max(scaleLong, scaleShort), maxShort = Math.Min(scaleLong, scaleShort);
        double factor = Math.Min(maxLong / Math.Max(width, height), maxShort / Math.Min(width, height));
        return (Math.Max(1, (int)(width * factor + 0.5)), Math.Max(1, (int)(height * factor + 0.5)));
    }

    /// <summary>Rescale, crop and flip (random draws in mmseg's order: ratio, crop box(es), flip).</summary>
    public SegmentationCrop Augment(ImageSample sample, Random random)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(random);
        var mask = sample.Mask ?? throw new ArgumentException("A segmentation transform needs a sample with a mask.", nameof(sample));

        double ratio = RandomResizedCrop.Uniform(random, MinRatio, MaxRatio);
        var (w, h) = RescaleSize(sample.Width, sample.Height, (int)(ScaleLong * ratio), (int)(ScaleShort * ratio));
        var resizedMask = PixelOps.ResizeNearest(mask, sample.Width, sample.Height, w, h);

        var box = CropBoxIn(w, h, random);
        byte[] maskCrop = PixelOps.Crop(resizedMask, w, h, box);
        if (CatMaxRatio < 1)
        {
            for (int attempt = 0; attempt < CropAttempts && !Balanced(maskCrop); attempt++)
            {
                box = CropBoxIn(w, h, random);
                maskCrop = PixelOps.Crop(resizedMask, w, h, box);
            }
        }

        var imagePixels = PilResize.ResizeRegion(sample.Image.Pixels, sample.Width, sample.Height, 3,
            w, h, box.Left, box.Top, box.Width, box.Height);
        var image = new RgbBuffer(imagePixels, box.Width, box.Height);
        bool flipped = Flip.Draw(random);
        if (flipped)
        {
            image = PixelOps.FlipHorizontal(image);
            maskCrop = PixelOps.FlipHorizontal(maskCrop, box.Width, box.Height);
        }
        return new SegmentationCrop(image, maskCrop, w, h, box, flipped);
    }

    /// <inheritdoc/>
    public PreparedSample Apply(ImageSample sample, Random random)
    {
        var crop = Augment(sample, random);
        var pixels = new float[3 * Size * Size]; // padding = 0 after normalisation, as mmseg pads
        PixelOps.WriteChw(crop.Image, Normalization, pixels, Size, Size);
        var mask = new byte[Size * Size];
        Array.Fill(mask, ImageSample.IgnoreIndex);
        int cw = crop.Image.Width;
        for (int y = 0; y < crop.Image.Height; y++)
            crop.Mask.AsSpan(y * cw, cw).CopyTo(mask.AsSpan(y * Size));
        return new PreparedSample(pixels, sample.Label, mask);
    }

    // mmseg RandomCrop.get_crop_bbox: offsets uniform in 0..margin (np.random.randint(0, margin + 1)), clipped to the image.
    private CropBox CropBoxIn(int width, int height, Random random)
    {
        int top = random.Next(0, Math.Max(height - Size, 0) + 1);
        int left = random.Next(0, Math.Max(width - Size, 0) + 1);
        return new CropBox(left, top, Math.Min(left + Size, width), Math.Min(top + Size, height));
    }

    // mmseg: len(cnt) > 1 and max(cnt) / sum(cnt) < cat_max_ratio, over labels other than 255.
    private bool Balanced(byte[] crop)
    {
        Span<int> counts = stackalloc int[256];
        foreach (byte v in crop) counts[v]++;
        int classes = 0, max = 0, total = 0;
        for (int v = 0; v < 256; v++)
        {
            if (v == ImageSample.IgnoreIndex || counts[v] == 0) continue;
            classes++;
            total += counts[v];
            max = Math.Max(max, counts[v]);
        }
        return classes > 1 && (double)max / total < CatMaxRatio;
    }
}
