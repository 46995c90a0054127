namespace BeitV2.Ml.Imaging;

/// <summary>
/// A crop rectangle in PIL's (left, top, right, bottom) convention, right/bottom exclusive, in the
/// coordinates of the image being cropped. It may extend past the image (negative left/top): those
/// pixels are zero, which is how torchvision's CenterCrop pads an image smaller than the crop.
/// </summary>
public readonly record struct CropBox(int Left, int Top, int Right, int Bottom)
{
    /// <summary>Right - Left.</summary>
    public int Width => Right - Left;

    /// <summary>Bottom - Top.</summary>
    public int Height => Bottom - Top;

    /// <summary>
    /// torchvision's <c>CenterCrop(size)</c> on a <paramref name="width"/>×<paramref name="height"/>
    /// image. A too-small side is first zero-padded by ((size-n)//2, (size-n+1)//2), leaving the
    /// crop flush with the padded image; otherwise the offset is <c>int(round((n - size) / 2))</c>
    /// with Python's half-to-even rounding (e.g. 159/2 = 79.5 → 80).
    /// </summary>
    public static CropBox Center(int width, int height, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        int left = Offset(width, size);
        int top = Offset(height, size);
        return new CropBox(left, top, left + size, top + size);
    }

    private static int Offset(int length, int size) =>
        length < size
            ? -((size - length) / 2)
            : (int)Math.Round((length - size) / 2.0, MidpointRounding.ToEven);
}
