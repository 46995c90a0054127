using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// torchvision's <c>RandomResizedCrop(size, scale, ratio, interpolation=BICUBIC)</c> on PIL images:
/// a random box of random area and aspect ratio, cropped and resized to size × size with Pillow's
/// bicubic filter (<see cref="PilResize"/>).
/// </summary>
/// <remarks>
/// <see cref="GetParams"/> is <c>RandomResizedCrop.get_params</c>: up to ten attempts with the
/// target area uniform in <c>scale · W·H</c> and the aspect ratio log-uniform in <c>ratio</c>,
/// <c>w = round(sqrt(area · r))</c>, <c>h = round(sqrt(area / r))</c> (half to even); the first box
/// with <c>0 &lt; w ≤ W</c> and <c>0 &lt; h ≤ H</c> is placed uniformly (inclusive bounds). Otherwise the
/// centre fallback: the whole image with its aspect ratio clamped into <c>ratio</c>. The random
/// numbers come from <see cref="Random"/>, so only the distribution (not torch's stream) is matched.
/// BEiT v2's pretraining crop (timm-style, <c>transforms.py</c>) has the same algorithm without the
/// <c>0 &lt;</c> checks, which only matter for images of a few pixels.
/// </remarks>
public sealed class RandomResizedCrop
{
    private const int Attempts = 10;

    /// <summary>Creates the transform.</summary>
    /// <param name="size">Output side.</param>
    /// <param name="minScale">Smallest crop area as a fraction of the image (0.08).</param>
    /// <param name="maxScale">Largest crop area fraction (1).</param>
    /// <param name="minRatio">Smallest aspect ratio w/h (3/4).</param>
    /// <param name="maxRatio">Largest aspect ratio w/h (4/3).</param>
    public RandomResizedCrop(int size, double minScale = 0.08, double maxScale = 1.0,
        double minRatio = 3.0 / 4.0, double maxRatio = 4.0 / 3.0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        if (!(minScale > 0) || !(maxScale >= minScale))
            throw new ArgumentOutOfRangeException(nameof(minScale), $"Need 0 < minScale <= maxScale, got ({minScale}, {maxScale}).");
        if (!(minRatio > 0) || !(maxRatio >= minRatio) || double.IsInfinity(maxRatio))
            throw new ArgumentOutOfRangeException(nameof(minRatio), $"Need 0 < minRatio <= maxRatio, got ({minRatio}, {maxRatio}).");
        Size = size;
        MinScale = minScale;
        MaxScale = maxScale;
        MinRatio = minRatio;
        MaxRatio = maxRatio;
    }

    /// <summary>Output side.</summary>
    public int Size { get; }

    /// <summary>Smallest area fraction.</summary>
    public double MinScale { get; }

    /// <summary>Largest area fraction.</summary>
    public double MaxScale { get; }

    /// <summary>Smallest aspect ratio (width / height).</summary>
    public double MinRatio { get; }

    /// <summary>Largest aspect ratio (width / height).</summary>
    public double MaxRatio { get; }

    /// <summary>Draws a crop box for a <paramref name="width"/>×<paramref name="height"/> image.</summary>
    public CropBox GetParams(int width, int height, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentNullException.ThrowIfNull(random);
        double area = (double)width * height;
        double logMin = Math.Log(MinRatio), logMax = Math.Log(MaxRatio);
        for (int attempt = 0; attempt < Attempts; attempt++)
        {
            double targetArea = area * Uniform(random, MinScale, MaxScale);
            double aspect = Math.Exp(Uniform(random, logMin, logMax));
            int w = (int)Math.Round(Math.Sqrt(targetArea * aspect), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(targetArea / aspect), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                int top = random.Next(0, height - h + 1);
                int left = random.Next(0, width - w + 1);
                return new CropBox(left, top, left + w, top + h);
            }
        }
        return CenterFallback(width, height);
    }

    /// <summary>
    /// The box used when all ten attempts fail: the whole image, narrowed to the nearest allowed
    /// aspect ratio (<c>h = round(W / minRatio)</c> or <c>w = round(H · maxRatio)</c>) and centred with
    /// floor division.
    /// </summary>
    public CropBox CenterFallback(int width, int height)
    {
        double inRatio = (double)width / height;
        int w, h;
        if (inRatio < MinRatio)
        {
            w = width;
            h = (int)Math.Round(w / MinRatio, MidpointRounding.ToEven);
        }
        else if (inRatio > MaxRatio)
        {
            h = height;
            w = (int)Math.Round(h * MaxRatio, MidpointRounding.ToEven);
        }
        else
        {
            w = width;
            h = height;
        }
        // A pathological ratio range could round to 0 or past the image; keep the box valid.
        w = Math.Clamp(w, 1, width);
        h = Math.Clamp(h, 1, height);
        int top = (height - h) / 2, left = (width - w) / 2;
        return new CropBox(left, top, left + w, top + h);
    }

    /// <summary>Draws a box and returns the resized crop.</summary>
    public RgbBuffer Apply(RgbBuffer image, Random random)
    {
        ArgumentNullException.ThrowIfNull(image);
        return ResizedCrop(image, GetParams(image.Width, image.Height, random), Size);
    }

    /// <summary>torchvision's <c>F.resized_crop</c> on a PIL image: <c>crop(box)</c>, then <c>resize((size, size), BICUBIC)</c>.</summary>
    public static RgbBuffer ResizedCrop(RgbBuffer image, CropBox box, int size) =>
        PilResize.Resize(PixelOps.Crop(image, box), size, size);

    // torch.empty(1).uniform_(a, b) / random.uniform(a, b).
    internal static double Uniform(Random random, double a, double b) => a + (b - a) * random.NextDouble();
}
