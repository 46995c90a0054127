using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Advanced;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>
/// The pictures of <c>POST /api/v1/segment</c>: the class mask as an 8-bit greyscale PNG whose pixel
/// values are the class indices (<c>maskPng</c>, <c>?format=png</c>), and a colour overlay of the
/// classes over the photo (<c>?format=overlay</c>). Class maps are row-major, one index per pixel,
/// already at the size wanted (see <see cref="ClassMapResizer"/> to bring a model-sized mask to the
/// input's size).
/// </summary>
public static class SegmentationRenderer
{
    /// <summary>The largest class index an 8-bit mask can hold.</summary>
    public const int MaxMaskClass = 255;

    /// <summary>
    /// Encodes a class map as an 8-bit greyscale PNG (colour type 0, depth 8) whose pixel values are
    /// the class indices: decoding it as L8 gives back exactly <paramref name="classMap"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The map does not hold width·height values, or a class is
    /// negative or above 255 (an 8-bit PNG cannot hold it; models with more classes need another
    /// encoding).</exception>
    public static byte[] MaskPng(ReadOnlySpan<int> classMap, int width, int height)
    {
        CheckMap(classMap.Length, width, height, nameof(classMap));
        var bytes = new byte[classMap.Length];
        for (int i = 0; i < classMap.Length; i++)
        {
            int c = classMap[i];
            if ((uint)c > MaxMaskClass)
                throw new ArgumentException(
                    $"Class {c} at ({i % width}, {i / width}) does not fit in an 8-bit mask (0 to {MaxMaskClass}).", nameof(classMap));
            bytes[i] = (byte)c;
        }
        return EncodeMask(bytes, width, height);
    }

    /// <summary>Encodes a class map that is already bytes as an 8-bit greyscale PNG (see the int overload).</summary>
    /// <exception cref="ArgumentException">The map does not hold width·height values.</exception>
    public static byte[] MaskPng(ReadOnlySpan<byte> classMap, int width, int height)
    {
        CheckMap(classMap.Length, width, height, nameof(classMap));
        return EncodeMask(classMap, width, height);
    }

    /// <summary>
    /// Blends each pixel's class colour over <paramref name="original"/>:
    /// <c>round_half_away((1 − alpha)·photo + alpha·colour)</c> per channel. Pixels of
    /// <paramref name="transparentClass"/> (if given) keep the photo unchanged. The result has the
    /// original's size.
    /// </summary>
    /// <param name="original">The photo; not modified.</param>
    /// <param name="classMap">One class per pixel of the photo, row-major.</param>
    /// <param name="width">Width of the class map; must equal the photo's.</param>
    /// <param name="height">Height of the class map; must equal the photo's.</param>
    /// <param name="palette">Class colours; <see cref="Palette.Default"/> (class 0 black) when null.</param>
    /// <param name="alpha">Weight of the class colour, 0 to 1.</param>
    /// <param name="transparentClass">A class left uncoloured (e.g. an ignore index), or null.</param>
    /// <returns>A new image; the caller disposes it.</returns>
    /// <exception cref="ArgumentException">The sizes disagree, or a class has no palette entry.</exception>
    public static Image<Rgb24> Overlay(Image<Rgb24> original, ReadOnlySpan<int> classMap, int width, int height,
        Palette? palette = null, double alpha = 0.5, int? transparentClass = null)
    {
        ArgumentNullException.ThrowIfNull(original);
        CheckMap(classMap.Length, width, height, nameof(classMap));
        if (original.Width != width || original.Height != height)
            throw new ArgumentException(
                $"The class map is {width}x{height} but the image is {original.Width}x{original.Height}; resize the map first (ClassMapResizer).",
                nameof(classMap));
        PixelBlend.CheckAlpha(alpha, nameof(alpha));
        palette ??= Palette.Default;

        // Validate every class before any pixel work.
        for (int i = 0; i < classMap.Length; i++)
        {
            int c = classMap[i];
            if (c != transparentClass && (uint)c >= (uint)palette.Count)
                throw new ArgumentException(
                    $"Class {c} at ({i % width}, {i / width}) has no colour in a palette of {palette.Count}.", nameof(classMap));
        }

        var result = original.Clone();
        var colors = palette.Colors;
        int skip = transparentClass ?? -1;
        bool hasSkip = transparentClass.HasValue;
        for (int y = 0; y < height; y++)
        {
            // Row memory rather than ProcessPixelRows: the class map is a span, which a lambda cannot capture.
            var classRow = classMap.Slice(y * width, width);
            var row = result.DangerousGetPixelRowMemory(y).Span;
            for (int x = 0; x < width; x++)
            {
                int c = classRow[x];
                if (hasSkip && c == skip) continue;
                row[x] = PixelBlend.Pixel(row[x], colors[c], alpha);
            }
        }
        return result;
    }

    /// <summary><see cref="Overlay"/> encoded as an RGB PNG (colour type 2, depth 8).</summary>
    public static byte[] OverlayPng(Image<Rgb24> original, ReadOnlySpan<int> classMap, int width, int height,
        Palette? palette = null, double alpha = 0.5, int? transparentClass = null)
    {
        using var image = Overlay(original, classMap, width, height, palette, alpha, transparentClass);
        return PngOutput.EncodeRgb(image);
    }

    private static byte[] EncodeMask(ReadOnlySpan<byte> bytes, int width, int height)
    {
        using var image = Image.LoadPixelData<L8>(bytes, width, height);
        return PngOutput.EncodeGray(image);
    }

    private static void CheckMap(int length, int width, int height, string paramName)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (length != (long)width * height)
            throw new ArgumentException($"Expected {width}x{height} = {(long)width * height} class indices, got {length}.", paramName);
    }
}
