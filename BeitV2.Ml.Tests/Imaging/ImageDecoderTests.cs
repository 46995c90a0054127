using BeitV2.Ml.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Tests.Imaging;

/// <summary>Decoder behaviour on bad, hostile and unusual input.</summary>
public sealed class ImageDecoderTests
{
    private static ImageDecodeError DecodeError(byte[] data, ImageDecoder? decoder = null) =>
        Assert.Throws<ImageDecodeException>(() => (decoder ?? ImageDecoder.Default).Decode(data)).Error;

    [Fact]
    public void TruncatedJpegFixture_IsCorrupt()
    {
        var ex = Assert.Throws<ImageDecodeException>(
            () => ImageDecoder.Default.DecodeFile(Path.Combine(FixturePaths.ImagesDir, "truncated.jpg")));
        Assert.Equal(ImageDecodeError.Corrupt, ex.Error);
        Assert.NotNull(ex.InnerException);
    }

    [Theory]
    [InlineData("rocket.jpg", 0.5)]
    [InlineData("rocket.jpg", 0.999)]
    [InlineData("flower.jpg", 0.9)]
    [InlineData("coffee.png", 0.5)]
    [InlineData("coffee.png", 0.999)]
    public void TruncatedFiles_AreCorrupt(string file, double keep)
    {
        // ImageSharp alone would decode these, painting the missing part black or grey.
        var full = File.ReadAllBytes(Path.Combine(FixturePaths.ImagesDir, file));
        var cut = full.AsSpan(0, (int)(full.Length * keep)).ToArray();
        var ex = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(cut));
        Assert.Equal(ImageDecodeError.Corrupt, ex.Error);
        Assert.Contains("truncated", ex.Message);
    }

    [Theory]
    [InlineData("rocket.jpg")]
    [InlineData("chelsea.png")]
    public void TrailingBytesAfterTheEndMarker_AreIgnored(string file)
    {
        // Some cameras append data after EOI/IEND; decoders ignore it and so must the truncation check.
        var data = File.ReadAllBytes(Path.Combine(FixturePaths.ImagesDir, file)).Concat(new byte[] { 0xFF, 0xD8, 1, 2, 3 }).ToArray();
        using var image = ImageDecoder.Default.Decode(data);
        Assert.True(image.Width > 0);
    }

    [Fact]
    public void MarkerBytesInsideASegment_DoNotEndTheJpegWalk()
    {
        // Like an EXIF thumbnail (its own SOI..SOS..EOI inside APP1), a comment segment holding
        // marker bytes must be skipped by its length, not scanned.
        var original = File.ReadAllBytes(Path.Combine(FixturePaths.ImagesDir, "rocket.jpg"));
        byte[] payload = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9];
        byte[] comment = [0xFF, 0xFE, 0x00, (byte)(payload.Length + 2), .. payload];
        byte[] withComment = [.. original.AsSpan(0, 2), .. comment, .. original.AsSpan(2)];
        using var image = ImageDecoder.Default.Decode(withComment);
        Assert.Equal((640, 427), (image.Width, image.Height));

        // ...and cutting the real scan data is still noticed.
        var ex = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(withComment.AsSpan(0, withComment.Length / 2)));
        Assert.Equal(ImageDecodeError.Corrupt, ex.Error);
    }

    [Fact]
    public void EmptyInput_IsEmpty()
    {
        Assert.Equal(ImageDecodeError.Empty, DecodeError([]));
        Assert.Equal(ImageDecodeError.Empty,
            Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(new MemoryStream())).Error);
    }

    [Fact]
    public void RandomBytes_AreUnknownFormat()
    {
        var data = new byte[4096];
        new Random(1234).NextBytes(data);
        Assert.Equal(ImageDecodeError.UnknownFormat, DecodeError(data));
        Assert.Equal(ImageDecodeError.UnknownFormat, DecodeError("hello, this is not an image"u8.ToArray()));
    }

    [Fact]
    public void HugeDeclaredPng_IsRefusedFromTheHeader()
    {
        // 10^10 pixels = 30 GB as RGB: only the 45-byte header exists, nothing is allocated.
        var ex = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(CraftedImages.PngHeader(100_000, 100_000)));
        Assert.True(ex.Error == ImageDecodeError.TooLarge, ex.Message);
        Assert.Contains("100000x100000", ex.Message);
    }

    [Fact]
    public void HugeDeclaredBmp_IsRefusedFromTheHeader()
    {
        var ex = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(CraftedImages.BmpHeader(50_000, 50_000)));
        Assert.True(ex.Error == ImageDecodeError.TooLarge, ex.Message);

        // Above 65535 per side ImageSharp's own BMP header check fires first (an
        // InvalidOperationException), which surfaces as Corrupt; either way nothing is decoded.
        var tooWide = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(CraftedImages.BmpHeader(100_000, 100_000)));
        Assert.Equal(ImageDecodeError.Corrupt, tooWide.Error);
    }

    [Fact]
    public void PixelLimit_IsConfigurable()
    {
        var decoder = new ImageDecoder(new ImageLimits(MaxPixels: 99, MaxBytes: 1 << 20));
        Assert.Equal(ImageDecodeError.TooLarge, DecodeError(EncodePng(new Image<Rgb24>(10, 10)), decoder));
        using var ok = decoder.Decode(EncodePng(new Image<Rgb24>(9, 11)));
        Assert.Equal(9, ok.Width);
    }

    [Fact]
    public void ByteLimit_AppliesToArraysStreamsAndFiles()
    {
        var png = EncodePng(new Image<Rgb24>(8, 8));
        var decoder = new ImageDecoder(new ImageLimits(MaxPixels: 1_000_000, MaxBytes: png.Length - 1));
        Assert.Equal(ImageDecodeError.TooLarge, DecodeError(png, decoder));
        Assert.Equal(ImageDecodeError.TooLarge,
            Assert.Throws<ImageDecodeException>(() => decoder.Decode(new MemoryStream(png))).Error);

        var path = Path.Combine(Path.GetTempPath(), $"beitv2-{Guid.NewGuid():N}.png");
        try
        {
            File.WriteAllBytes(path, png);
            Assert.Equal(ImageDecodeError.TooLarge, Assert.Throws<ImageDecodeException>(() => decoder.DecodeFile(path)).Error);
            using var ok = new ImageDecoder(new ImageLimits(1_000_000, png.Length)).DecodeFile(path);
            Assert.Equal(8, ok.Height);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(10, 0)]
    public void ZeroDimension_IsRefused(int width, int height)
    {
        var png = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(CraftedImages.PngHeader(width, height)));
        Assert.True(png.Error == ImageDecodeError.ZeroSize, png.Message);
        var bmp = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(CraftedImages.BmpHeader(width, height)));
        Assert.True(bmp.Error == ImageDecodeError.ZeroSize, bmp.Message);
    }

    [Fact]
    public void HeaderWithoutPixels_IsCorrupt() =>
        Assert.Equal(ImageDecodeError.Corrupt, DecodeError(CraftedImages.PngHeader(16, 16)));

    [Fact]
    public void OnePixelImage_Decodes()
    {
        using var source = new Image<Rgb24>(1, 1);
        source[0, 0] = new Rgb24(12, 34, 56);
        using var image = ImageDecoder.Default.Decode(new MemoryStream(EncodePng(source)));
        Assert.Equal((1, 1), (image.Width, image.Height));
        Assert.Equal(new Rgb24(12, 34, 56), image[0, 0]);
    }

    [Fact]
    public void Alpha_IsDroppedNotComposited()
    {
        // PIL's convert('RGB') keeps the colour of a fully transparent pixel; compositing onto
        // white would give (255,255,255).
        using var source = new Image<Rgba32>(2, 1);
        source[0, 0] = new Rgba32(200, 100, 50, 0);
        source[1, 0] = new Rgba32(10, 20, 30, 128);
        var png = EncodePng(source, new PngEncoder { ColorType = PngColorType.RgbWithAlpha, TransparentColorMode = PngTransparentColorMode.Preserve });
        using var image = ImageDecoder.Default.Decode(png);
        Assert.Equal(new Rgb24(200, 100, 50), image[0, 0]);
        Assert.Equal(new Rgb24(10, 20, 30), image[1, 0]);
    }

    [Fact]
    public void Greyscale_IsExpandedToThreeEqualChannels()
    {
        using var source = new Image<L8>(1, 1);
        source[0, 0] = new L8(77);
        using var image = ImageDecoder.Default.Decode(EncodePng(source, new PngEncoder { ColorType = PngColorType.Grayscale }));
        Assert.Equal(new Rgb24(77, 77, 77), image[0, 0]);
    }

    [Fact]
    public void ExifOrientation_IsApplied()
    {
        // Orientation 6 = "rotate 90° clockwise to display": a 40x20 landscape JPEG is a portrait photo.
        using var source = new Image<Rgb24>(40, 20);
        source.Metadata.ExifProfile = new ExifProfile();
        source.Metadata.ExifProfile.SetValue(ExifTag.Orientation, (ushort)6);
        using var ms = new MemoryStream();
        source.Save(ms, new JpegEncoder());
        var jpeg = ms.ToArray();

        using var upright = ImageDecoder.Default.Decode(jpeg);
        Assert.Equal((20, 40), (upright.Width, upright.Height));

        using var raw = new ImageDecoder(applyExifOrientation: false).Decode(jpeg);
        Assert.Equal((40, 20), (raw.Width, raw.Height));
    }

    [Fact]
    public void InvalidLimits_AreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageDecoder(new ImageLimits(0, 10)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageDecoder(new ImageLimits(10, -1)));
    }

    private static byte[] EncodePng<TPixel>(Image<TPixel> image, PngEncoder? encoder = null)
        where TPixel : unmanaged, IPixel<TPixel>
    {
        using (image)
        {
            using var ms = new MemoryStream();
            image.Save(ms, encoder ?? new PngEncoder());
            return ms.ToArray();
        }
    }
}
