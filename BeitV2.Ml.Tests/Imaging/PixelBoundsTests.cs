using BeitV2.Ml.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Tests.Imaging;

/// <summary>
/// The decoder's bounds on hostile pixel data: PNG pixel data shorter than its header
/// declares is refused, thin images are refused from the header, and the header alone can be read and checked.
/// </summary>
public sealed class PixelBoundsTests
{
    [Fact]
    public void PngWhosePixelDataIsShorterThanItsHeader_IsRefusedAsTruncated()
    {
        // Complete chunk structure (IHDR, IDAT, IEND), but the IDAT inflates to 1 of 64·(1+192) bytes.
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(CraftedImages.PngWithShortIdat(64, 64)));
        Assert.Equal(ImageDecodeError.Corrupt, e.Error);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("1 of the 12352 bytes", e.Message);
    }

    [Fact]
    public void PngCutInsideItsPixelData_ThenGivenAnEnd_IsRefused()
    {
        // A real PNG whose IDAT payload loses its second half (chunk length adjusted, IEND kept): a
        // "complete" file that ImageSharp would decode with a black lower half.
        var png = Encode(Noise(48, 40), new PngEncoder { CompressionLevel = PngCompressionLevel.NoCompression });
        var cut = CutIdat(png);
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(cut));
        Assert.Equal(ImageDecodeError.Corrupt, e.Error);
    }

    public static TheoryData<PngColorType, PngBitDepth, PngInterlaceMode> PngLayouts()
    {
        var data = new TheoryData<PngColorType, PngBitDepth, PngInterlaceMode>();
        foreach (var interlace in new[] { PngInterlaceMode.None, PngInterlaceMode.Adam7 })
        {
            foreach (var depth in new[] { PngBitDepth.Bit1, PngBitDepth.Bit2, PngBitDepth.Bit4, PngBitDepth.Bit8 })
            {
                data.Add(PngColorType.Palette, depth, interlace);
                data.Add(PngColorType.Grayscale, depth, interlace);
            }
            foreach (var depth in new[] { PngBitDepth.Bit8, PngBitDepth.Bit16 })
            {
                data.Add(PngColorType.Rgb, depth, interlace);
                data.Add(PngColorType.RgbWithAlpha, depth, interlace);
                data.Add(PngColorType.GrayscaleWithAlpha, depth, interlace);
            }
            data.Add(PngColorType.Grayscale, PngBitDepth.Bit16, interlace);
        }
        return data;
    }

    /// <summary>
    /// The truncation check computes the scanline bytes IHDR declares for every colour type, bit depth and
    /// interlace method; a complete PNG of any layout must not be mistaken for a truncated one. Odd sizes
    /// (37×23) leave partial bytes at the end of sub-byte rows and empty Adam7 passes.
    /// </summary>
    [Theory]
    [MemberData(nameof(PngLayouts))]
    public void CompletePngs_OfEveryLayout_StillDecode(PngColorType colour, PngBitDepth depth, PngInterlaceMode interlace)
    {
        using var source = Noise(37, 23);
        var png = Encode(source, new PngEncoder { ColorType = colour, BitDepth = depth, InterlaceMethod = interlace });
        using var decoded = ImageDecoder.Default.Decode(png);
        Assert.Equal((37, 23), (decoded.Width, decoded.Height));
    }

    [Theory]
    [InlineData(1, 101)]
    [InlineData(4, 10_000_000)]
    [InlineData(40_000_000, 1)]
    public void ThinImages_AreRefusedFromTheHeader(int width, int height)
    {
        // Header only: decoding these would fail as corrupt, so AspectRatio proves the header check came first.
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.Decode(CraftedImages.PngHeader(width, height)));
        Assert.True(e.Error == ImageDecodeError.AspectRatio, e.Message);
        Assert.Contains("1:100", e.Message);
        Assert.Equal(ImageDecodeError.AspectRatio,
            Assert.Throws<ImageDecodeException>(() => ImageDecoder.Default.ReadHeader(CraftedImages.PngHeader(width, height))).Error);
    }

    [Fact]
    public void AThinImageWithinTheRatio_Decodes()
    {
        using var image = ImageDecoder.Default.Decode(Encode(Noise(2, 200), new PngEncoder()));
        Assert.Equal((2, 200), (image.Width, image.Height));
    }

    [Fact]
    public void ReadHeader_ReportsTheDeclaredSize_WithoutTouchingThePixels()
    {
        var header = ImageDecoder.Default.ReadHeader(CraftedImages.PngWithShortIdat(6000, 6000));
        Assert.Equal(new ImageHeader(6000, 6000, "PNG"), header);
        Assert.Equal(108_000_000, header.DecodedBytes);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(20_000)]
    public void AspectRatioLimit_IsValidated(double ratio) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageDecoder(new ImageLimits(1000, 1000, ratio)));

    private static Image<Rgb24> Noise(int w, int h)
    {
        var rng = new Random(w * 1000 + h);
        var image = new Image<Rgb24>(w, h);
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
                image[x, y] = new Rgb24((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256));
        return image;
    }

    private static byte[] Encode(Image<Rgb24> image, PngEncoder encoder)
    {
        using (image)
        using (var ms = new MemoryStream())
        {
            image.SaveAsPng(ms, encoder);
            return ms.ToArray();
        }
    }

    // Keeps the first half of the (single) IDAT chunk's payload, with a corrected length and CRC: a well-formed
    // file whose pixel data simply stops.
    private static byte[] CutIdat(byte[] png)
    {
        var output = new MemoryStream();
        output.Write(png, 0, 8);
        var i = 8;
        while (i < png.Length)
        {
            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(i));
            var type = System.Text.Encoding.ASCII.GetString(png, i + 4, 4);
            if (type == "IDAT")
            {
                var keep = length / 2;
                var header = new byte[8];
                System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header, keep);
                png.AsSpan(i + 4, 4).CopyTo(header.AsSpan(4));
                output.Write(header);
                output.Write(png, i + 8, keep);
                var crc = new byte[4];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(crc, CraftedImages.Crc32(png.AsSpan(i + 4, 4 + keep).ToArray()));
                output.Write(crc);
            }
            else output.Write(png, i, 12 + length);
            i += 12 + length;
        }
        return output.ToArray();
    }
}
