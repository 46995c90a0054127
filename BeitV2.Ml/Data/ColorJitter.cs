using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// torchvision's <c>ColorJitter(brightness, contrast, saturation)</c> on PIL RGB images, reproduced
/// on 8-bit pixels: the adjustments are Pillow's <c>ImageEnhance</c> classes, applied in a random order
/// with factors drawn uniformly from [max(0, 1 - v), 1 + v]. Hue is not implemented (no BEiT v2
/// recipe jitters hue).
/// </summary>
/// <remarks>
/// Each adjustment is <c>Image.blend(degenerate, image, factor)</c> (libImaging/Blend.c, in float32:
/// <c>out = (uint8)(d + f · (v - d))</c>, truncating, clipped to 0..255 when f &gt; 1), with the
/// degenerate image
/// <list type="bullet">
/// <item>brightness: black;</item>
/// <item>contrast: the grey level <c>int(mean(L) + 0.5)</c> over the whole image;</item>
/// <item>saturation: the image's own greyscale L, replicated to RGB;</item>
/// </list>
/// where L is Pillow's <c>convert("L")</c>: <c>(19595 R + 38470 G + 7471 B + 0x8000) &gt;&gt; 16</c>.
/// Given the same factors and order the result is bit-identical to torchvision + Pillow; the random
/// numbers themselves come from <see cref="Random"/>.
/// </remarks>
public sealed class ColorJitter
{
    /// <summary>Creates the transform; 0 disables an adjustment.</summary>
    public ColorJitter(double brightness = 0, double contrast = 0, double saturation = 0)
    {
        Brightness = Range(brightness, nameof(brightness));
        Contrast = Range(contrast, nameof(contrast));
        Saturation = Range(saturation, nameof(saturation));
    }

    /// <summary>The reference MIM pretraining jitter, <c>ColorJitter(0.4, 0.4, 0.4)</c>.</summary>
    public static ColorJitter Pretraining { get; } = new(0.4, 0.4, 0.4);

    /// <summary>Factor range of the brightness adjustment, or null when disabled.</summary>
    public (double Min, double Max)? Brightness { get; }

    /// <summary>Factor range of the contrast adjustment, or null when disabled.</summary>
    public (double Min, double Max)? Contrast { get; }

    /// <summary>Factor range of the saturation adjustment, or null when disabled.</summary>
    public (double Min, double Max)? Saturation { get; }

    /// <summary>
    /// Draws the parameters as torchvision's <c>get_params</c> does: a random order of the
    /// adjustments, then one factor per enabled adjustment (brightness, contrast, saturation).
    /// </summary>
    public ColorJitterParameters Draw(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var order = new[] { ColorAdjustment.Brightness, ColorAdjustment.Contrast, ColorAdjustment.Saturation };
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        double? b = Factor(Brightness, random), c = Factor(Contrast, random), s = Factor(Saturation, random);
        return new ColorJitterParameters(order, b, c, s);
    }

    /// <summary>Draws parameters and applies them.</summary>
    public RgbBuffer Apply(RgbBuffer image, Random random) => Apply(image, Draw(random));

    /// <summary>Applies the enabled adjustments in the drawn order.</summary>
    public static RgbBuffer Apply(RgbBuffer image, ColorJitterParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(parameters);
        foreach (var step in parameters.Order)
        {
            image = step switch
            {
                ColorAdjustment.Brightness when parameters.Brightness is { } f => AdjustBrightness(image, f),
                ColorAdjustment.Contrast when parameters.Contrast is { } f => AdjustContrast(image, f),
                ColorAdjustment.Saturation when parameters.Saturation is { } f => AdjustSaturation(image, f),
                _ => image,
            };
        }
        return image;
    }

    /// <summary><c>ImageEnhance.Brightness(img).enhance(factor)</c>: blend with black.</summary>
    public static RgbBuffer AdjustBrightness(RgbBuffer image, double factor)
    {
        ArgumentNullException.ThrowIfNull(image);
        var src = image.Pixels;
        var dst = new byte[src.Length];
        float alpha = (float)factor;
        for (int i = 0; i < src.Length; i++) dst[i] = Blend(0, src[i], alpha);
        return new RgbBuffer(dst, image.Width, image.Height);
    }

    /// <summary><c>ImageEnhance.Contrast(img).enhance(factor)</c>: blend with the mean grey level.</summary>
    public static RgbBuffer AdjustContrast(RgbBuffer image, double factor)
    {
        ArgumentNullException.ThrowIfNull(image);
        var src = image.Pixels;
        // ImageStat.Stat(L).mean: sum(level · count) / pixels, exact in double for any image that fits in memory.
        long sum = 0;
        for (int i = 0; i < src.Length; i += 3) sum += Luma(src[i], src[i + 1], src[i + 2]);
        int mean = (int)((double)sum / (src.Length / 3) + 0.5);
        var dst = new byte[src.Length];
        float alpha = (float)factor;
        for (int i = 0; i < src.Length; i++) dst[i] = Blend(mean, src[i], alpha);
        return new RgbBuffer(dst, image.Width, image.Height);
    }

    /// <summary><c>ImageEnhance.Color(img).enhance(factor)</c>: blend with the image's greyscale version.</summary>
    public static RgbBuffer AdjustSaturation(RgbBuffer image, double factor)
    {
        ArgumentNullException.ThrowIfNull(image);
        var src = image.Pixels;
        var dst = new byte[src.Length];
        float alpha = (float)factor;
        for (int i = 0; i < src.Length; i += 3)
        {
            int grey = Luma(src[i], src[i + 1], src[i + 2]);
            dst[i] = Blend(grey, src[i], alpha);
            dst[i + 1] = Blend(grey, src[i + 1], alpha);
            dst[i + 2] = Blend(grey, src[i + 2], alpha);
        }
        return new RgbBuffer(dst, image.Width, image.Height);
    }

    /// <summary>Pillow's RGB → L conversion (ITU-R 601-2 in 16-bit fixed point, rounded).</summary>
    public static int Luma(int r, int g, int b) => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;

    // ImagingBlend for one 8-bit value: degenerate d, image value v, float alpha.
    private static byte Blend(int d, int v, float alpha)
    {
        if (alpha == 0f) return (byte)d;
        if (alpha == 1f) return (byte)v;
        float t = d + alpha * (v - d);
        if (alpha >= 0f && alpha <= 1f) return (byte)t;
        return t <= 0f ? (byte)0 : t >= 255f ? (byte)255 : (byte)t;
    }

    private static (double, double)? Range(double value, string name)
    {
        if (!(value >= 0) || double.IsInfinity(value))
            throw new ArgumentOutOfRangeException(name, value, "must be a non-negative number");
        return value == 0 ? null : (Math.Max(0, 1 - value), 1 + value);
    }

    private static double? Factor((double Min, double Max)? range, Random random) =>
        range is { } r ? RandomResizedCrop.Uniform(random, r.Min, r.Max) : null;
}
