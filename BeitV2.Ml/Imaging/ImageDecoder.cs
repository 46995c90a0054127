using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Pbm;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tga;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace BeitV2.Ml.Imaging;

/// <summary>
/// Turns untrusted encoded bytes into an upright 8-bit RGB image, the equivalent of the reference
/// loader <c>PIL.Image.open(f).convert('RGB')</c>. Every input problem surfaces as
/// <see cref="ImageDecodeException"/>; the size limits are enforced from the header before decoding.
/// </summary>
/// <remarks>
/// Colour conversion follows PIL's <c>convert('RGB')</c>: alpha is dropped (not composited onto
/// white), greyscale and palette images are expanded to three equal / looked-up channels.
/// Differences from the reference worth knowing:
/// <list type="bullet">
/// <item>EXIF orientation is applied by default; the reference loader does not do that, so a rotated
/// phone photo is seen upright here but sideways by the reference (switch it off to match).</item>
/// <item>ImageSharp's JPEG decoder is not libjpeg-turbo: pixels differ by a few levels.</item>
/// <item>16-bit PNGs: ImageSharp and PIL may reduce the channels to 8 bits differently (unverified, at most one level).</item>
/// <item>ImageSharp silently decodes truncated files (missing pixels become black/grey). PNG and
/// JPEG files are therefore checked for a complete structure first and refused as
/// <see cref="ImageDecodeError.Corrupt"/>, like PIL does; other formats rely on ImageSharp alone.</item>
/// </list>
/// Only the first frame of GIF/TIFF files is decoded (like PIL), so a many-frame file cannot
/// multiply the memory the pixel limit allows.
/// </remarks>
public sealed class ImageDecoder
{
    private readonly Configuration _configuration;

    /// <summary>A decoder with <see cref="ImageLimits.Default"/> that applies EXIF orientation.</summary>
    public static ImageDecoder Default { get; } = new();

    /// <summary>Creates a decoder.</summary>
    /// <param name="limits">Size limits; <see cref="ImageLimits.Default"/> when null.</param>
    /// <param name="applyExifOrientation">Rotate/flip according to the EXIF Orientation tag.</param>
    public ImageDecoder(ImageLimits? limits = null, bool applyExifOrientation = true)
    {
        Limits = (limits ?? ImageLimits.Default).Validate();
        ApplyExifOrientation = applyExifOrientation;

        // A fresh Configuration (not Configuration.Default.Clone(), which shares the format
        // manager) so that swapping the GIF/TIFF decoders does not leak into the process-wide default.
        _configuration = new Configuration(
            new PngConfigurationModule(),
            new JpegConfigurationModule(),
            new GifConfigurationModule(),
            new BmpConfigurationModule(),
            new PbmConfigurationModule(),
            new TgaConfigurationModule(),
            new TiffConfigurationModule(),
            new WebpConfigurationModule());
        _configuration.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = FrameDecodingMode.First });
        _configuration.ImageFormatsManager.SetDecoder(TiffFormat.Instance, new TiffDecoder { DecodingMode = FrameDecodingMode.First });
    }

    /// <summary>The limits checked before decoding.</summary>
    public ImageLimits Limits { get; }

    /// <summary>Whether the EXIF Orientation tag is applied after decoding.</summary>
    public bool ApplyExifOrientation { get; }

    /// <summary>Decodes an encoded image held in memory. The caller owns (and disposes) the result.</summary>
    /// <exception cref="ImageDecodeException">The input is empty, not an image, corrupt or too large.</exception>
    public Image<Rgb24> Decode(byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return DecodeCore(data, data.Length);
    }

    /// <summary>Decodes an encoded image held in memory (copied once). The caller owns the result.</summary>
    /// <exception cref="ImageDecodeException">The input is empty, not an image, corrupt or too large.</exception>
    public Image<Rgb24> Decode(ReadOnlySpan<byte> data)
    {
        if (data.Length > Limits.MaxBytes) throw TooManyBytes(data.Length);
        return DecodeCore(data.ToArray(), data.Length);
    }

    /// <summary>
    /// Reads the stream to its end (at most <see cref="ImageLimits.MaxBytes"/> + 1 bytes, so an
    /// endless upload is cut off) and decodes it. I/O errors of the stream itself are not wrapped.
    /// </summary>
    /// <exception cref="ImageDecodeException">The input is empty, not an image, corrupt or too large.</exception>
    public Image<Rgb24> Decode(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > Limits.MaxBytes) throw TooManyBytes(buffer.Length);
        }
        return DecodeCore(buffer.GetBuffer(), (int)buffer.Length);
    }

    /// <summary>
    /// Decodes an image file. A missing or unreadable file is a server-side problem and raises the
    /// usual I/O exception, not <see cref="ImageDecodeException"/>.
    /// </summary>
    /// <exception cref="ImageDecodeException">The file is empty, not an image, corrupt or too large.</exception>
    public Image<Rgb24> DecodeFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var length = new FileInfo(path).Length;
        if (length > Limits.MaxBytes) throw TooManyBytes(length);
        return Decode(File.ReadAllBytes(path));
    }

    // Works on the first `length` bytes of `buffer` (a MemoryStream's buffer may be longer).
    private Image<Rgb24> DecodeCore(byte[] buffer, int length)
    {
        if (length == 0)
            throw new ImageDecodeException(ImageDecodeError.Empty, "The image is empty (0 bytes).");
        if (length > Limits.MaxBytes) throw TooManyBytes(length);

        // Header first: refuse bombs before any pixel memory is allocated.
        var format = IdentifyCore(buffer, length).Format;

        var truncation = TruncationCheck.Find(buffer.AsSpan(0, length), format);
        if (truncation is not null)
            throw new ImageDecodeException(ImageDecodeError.Corrupt, $"The {format.Name} file is truncated: {truncation}.");

        Image<Rgb24> image;
        try
        {
            // Load<Rgb24> converts any source pixel type to RGB24 by dropping alpha / expanding
            // grey and palette entries, which is what PIL's convert('RGB') does.
            using var pixelStream = new MemoryStream(buffer, 0, length, writable: false);
            image = Image.Load<Rgb24>(_configuration, pixelStream);
        }
        catch (Exception ex) when (IsInputFailure(ex))
        {
            throw Wrap(ex, format.Name);
        }

        try
        {
            // Defence in depth: a decoder could disagree with its own Identify.
            CheckDimensions(image.Width, image.Height, format.Name);
            if (ApplyExifOrientation) image.Mutate(x => x.AutoOrient());
            return image;
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads only the header of an encoded image and applies every limit that depends on it (pixels, aspect
    /// ratio, zero sizes): no pixel memory is allocated, so a caller can budget a batch of uploads before
    /// decoding any of them.
    /// </summary>
    /// <exception cref="ImageDecodeException">The input is empty, not an image, or its header breaks a limit.</exception>
    public ImageHeader ReadHeader(byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length == 0)
            throw new ImageDecodeException(ImageDecodeError.Empty, "The image is empty (0 bytes).");
        if (data.Length > Limits.MaxBytes) throw TooManyBytes(data.Length);
        return IdentifyCore(data, data.Length).Header;
    }

    private (ImageHeader Header, IImageFormat Format) IdentifyCore(byte[] buffer, int length)
    {
        IImageInfo? info;
        IImageFormat? format;
        try
        {
            using var headerStream = new MemoryStream(buffer, 0, length, writable: false);
            info = Image.Identify(_configuration, headerStream, out format);
        }
        catch (Exception ex) when (IsInputFailure(ex))
        {
            throw Wrap(ex, DetectFormat(buffer, length));
        }

        if (info is null || format is null)
            throw new ImageDecodeException(ImageDecodeError.UnknownFormat,
                "The data is not in a supported image format (PNG, JPEG, GIF, BMP, TIFF, WebP, TGA, PBM).");
        CheckDimensions(info.Width, info.Height, format.Name);
        return (new ImageHeader(info.Width, info.Height, format.Name), format);
    }

    private ImageDecodeException TooManyBytes(long length) => new(ImageDecodeError.TooLarge,
        $"The image is {length} bytes or more; at most {Limits.MaxBytes} bytes are accepted.");

    private void CheckDimensions(int width, int height, string formatName)
    {
        if (width <= 0 || height <= 0)
            throw new ImageDecodeException(ImageDecodeError.ZeroSize,
                $"The {formatName} image declares a size of {width}x{height}.");
        long pixels = (long)width * height;
        if (pixels > Limits.MaxPixels)
            throw new ImageDecodeException(ImageDecodeError.TooLarge,
                $"The {formatName} image is {width}x{height} = {pixels} pixels; at most {Limits.MaxPixels} are accepted.");
        double ratio = (double)Math.Max(width, height) / Math.Min(width, height);
        if (ratio > Limits.MaxAspectRatio)
            throw new ImageDecodeException(ImageDecodeError.AspectRatio,
                $"The {formatName} image is {width}x{height}, a side ratio of 1:{ratio:0.#}; images at most 1:{Limits.MaxAspectRatio:0.#} " +
                "are accepted (crop or pad the image first).");
    }

    // Decoders hit by malformed data throw their own exception types but also IndexOutOfRange,
    // EndOfStream, InvalidOperation, Argument... exceptions. All of those mean "bad input" here.
    // Cancellation and out-of-memory are not input problems and must keep their meaning.
    private static bool IsInputFailure(Exception ex) =>
        ex is not (OperationCanceledException or OutOfMemoryException or ImageDecodeException);

    // The format the bytes announce (by their signature alone), for naming it in a failure: null when unknown.
    private string? DetectFormat(byte[] buffer, int length)
    {
        try
        {
            using var stream = new MemoryStream(buffer, 0, length, writable: false);
            return Image.DetectFormat(_configuration, stream)?.Name;
        }
        catch (Exception ex) when (IsInputFailure(ex))
        {
            return null;
        }
    }

    // The message is for the person who sent the file: plain words, no decoder internals or exception
    // type names (those stay on the inner exception, for the server log).
    private static ImageDecodeException Wrap(Exception ex, string? formatName) => ex switch
    {
        UnknownImageFormatException => new(ImageDecodeError.UnknownFormat,
            "The data is not in a supported image format (PNG, JPEG, GIF, BMP, TIFF, WebP, TGA, PBM).", ex),
        NotSupportedException => new(ImageDecodeError.UnknownFormat,
            $"The {formatName ?? "image"} file uses a variant of its format that is not supported ({ex.Message.TrimEnd('.')}).", ex),
        InvalidMemoryOperationException => new(ImageDecodeError.TooLarge,
            $"The {formatName ?? "image"} file needs more memory to decode than is allowed.", ex),
        _ => new(ImageDecodeError.Corrupt, DecodeFailureText.Describe(ex, formatName), ex),
    };
}
