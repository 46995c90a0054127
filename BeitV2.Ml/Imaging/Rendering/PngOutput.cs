using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>
/// The PNG encoders of the rendering code, with every choice fixed so that the same pixels always
/// give the same bytes: explicit colour type and 8-bit depth, no interlacing, the default filter
/// (adaptive) and compression level, and no ancillary chunks at all (no pHYs, gAMA, eXIf, iTXt),
/// so nothing from an input image's metadata or the environment can leak into the file.
/// </summary>
public static class PngOutput
{
    private static readonly PngEncoder GrayEncoder = new()
    {
        ColorType = PngColorType.Grayscale,
        BitDepth = PngBitDepth.Bit8,
        InterlaceMethod = PngInterlaceMode.None,
        ChunkFilter = PngChunkFilter.ExcludeAll,
        IgnoreMetadata = true,
    };

    private static readonly PngEncoder RgbEncoder = new()
    {
        ColorType = PngColorType.Rgb,
        BitDepth = PngBitDepth.Bit8,
        InterlaceMethod = PngInterlaceMode.None,
        ChunkFilter = PngChunkFilter.ExcludeAll,
        IgnoreMetadata = true,
    };

    /// <summary>Encodes an 8-bit greyscale PNG (colour type 0, depth 8); pixel values are stored unchanged.</summary>
    public static byte[] EncodeGray(Image<L8> image) => Encode(image, GrayEncoder);

    /// <summary>Encodes an 8-bit RGB PNG (colour type 2, depth 8, no alpha).</summary>
    public static byte[] EncodeRgb(Image<Rgb24> image) => Encode(image, RgbEncoder);

    private static byte[] Encode<TPixel>(Image<TPixel> image, PngEncoder encoder)
        where TPixel : unmanaged, IPixel<TPixel>
    {
        ArgumentNullException.ThrowIfNull(image);
        using var stream = new MemoryStream();
        image.Save(stream, encoder);
        return stream.ToArray();
    }
}
