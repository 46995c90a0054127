using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging;

/// <summary>
/// A plain 8-bit RGB image as an interleaved row-major (HWC) byte array. The resampler and the
/// evaluation transform work on this layout because it is exactly numpy's <c>np.asarray(pil_image)</c>,
/// which makes fixtures comparable byte for byte and keeps the hot loops free of ImageSharp types.
/// </summary>
public sealed class RgbBuffer
{
    /// <summary>Wraps an existing HWC buffer (not copied).</summary>
    public RgbBuffer(byte[] pixels, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (pixels.LongLength != (long)width * height * 3)
            throw new ArgumentException($"Expected {width}x{height}x3 = {(long)width * height * 3} bytes, got {pixels.LongLength}.", nameof(pixels));
        Pixels = pixels;
        Width = width;
        Height = height;
    }

    /// <summary>Interleaved R,G,B bytes, row after row.</summary>
    public byte[] Pixels { get; }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Copies the pixels of an ImageSharp image.</summary>
    public static RgbBuffer FromImage(Image<Rgb24> image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var pixels = new byte[checked(image.Width * image.Height * 3)];
        image.CopyPixelDataTo(pixels);
        return new RgbBuffer(pixels, image.Width, image.Height);
    }

    /// <summary>Copies the pixels into a new ImageSharp image (e.g. to encode the model's view as PNG).</summary>
    public Image<Rgb24> ToImage() => Image.LoadPixelData<Rgb24>(Pixels, Width, Height);
}
