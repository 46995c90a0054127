using BeitV2.Ml.Imaging.Rendering;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Tests.Rendering;

public sealed class SegmentationRendererTests
{
    [Fact]
    public void MaskPng_RoundTripsExactly()
    {
        const int width = 37, height = 23;
        var random = new Random(1);
        var map = new int[width * height];
        for (int i = 0; i < map.Length; i++) map[i] = random.Next(256);
        map[0] = 0;
        map[1] = 255;

        var png = SegmentationRenderer.MaskPng(map, width, height);

        PngAssert.Header(png, width, height, bitDepth: 8, colorType: 0);
        using var decoded = Image.Load<L8>(png);
        Assert.Equal((width, height), (decoded.Width, decoded.Height));
        var pixels = new byte[width * height];
        decoded.CopyPixelDataTo(pixels);
        Assert.Equal(map, pixels.Select(b => (int)b).ToArray());
    }

    [Fact]
    public void MaskPng_ByteOverload_RoundTripsAndMatchesIntOverload()
    {
        var bytes = Enumerable.Range(0, 256).Select(i => (byte)(255 - i)).ToArray();
        var png = SegmentationRenderer.MaskPng(bytes, 16, 16);

        using var decoded = Image.Load<L8>(png);
        var pixels = new byte[256];
        decoded.CopyPixelDataTo(pixels);
        Assert.Equal(bytes, pixels);
        Assert.Equal(png, SegmentationRenderer.MaskPng(bytes.Select(b => (int)b).ToArray(), 16, 16));
    }

    [Fact]
    public void MaskPng_IsDeterministicAndHasNoAncillaryChunks()
    {
        var map = Enumerable.Range(0, 60).Select(i => i % 7).ToArray();
        var first = SegmentationRenderer.MaskPng(map, 10, 6);
        Assert.Equal(first, SegmentationRenderer.MaskPng(map, 10, 6));
        Assert.Equal(["IHDR", "IDAT", "IEND"], PngAssert.ChunkTypes(first).Distinct());
    }

    [Theory]
    [InlineData(256)]
    [InlineData(1000)]
    [InlineData(-1)]
    public void MaskPng_RejectsClassesOutsideAByte(int badClass)
    {
        var map = new int[12];
        map[7] = badClass;
        var ex = Assert.Throws<ArgumentException>(() => SegmentationRenderer.MaskPng(map, 4, 3));
        Assert.Equal("classMap", ex.ParamName);
    }

    [Fact]
    public void MaskPng_RejectsWrongLength()
    {
        Assert.Throws<ArgumentException>(() => SegmentationRenderer.MaskPng(new int[11], 4, 3));
        Assert.Throws<ArgumentException>(() => SegmentationRenderer.MaskPng(new byte[13], 4, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => SegmentationRenderer.MaskPng(new int[0], 0, 3));
    }

    [Fact]
    public void Overlay_BlendsClassColoursAtTheOriginalSize()
    {
        using var photo = new Image<Rgb24>(5, 4, new Rgb24(100, 150, 201));
        var map = new int[20];
        map[1 * 5 + 2] = 1; // (2, 1) red
        map[3 * 5 + 4] = 2; // (4, 3) blue
        var palette = new Palette([new Rgb24(0, 0, 0), new Rgb24(255, 0, 0), new Rgb24(0, 0, 255)]);

        var png = SegmentationRenderer.OverlayPng(photo, map, 5, 4, palette, alpha: 0.25);

        PngAssert.Header(png, 5, 4, bitDepth: 8, colorType: 2);
        using var overlay = Image.Load<Rgb24>(png);
        Assert.Equal((5, 4), (overlay.Width, overlay.Height));
        // class 0 (black): 0.75·(100, 150, 201) = (75, 112.5, 150.75) → (75, 113, 151)
        Assert.Equal(new Rgb24(75, 113, 151), overlay[0, 0]);
        // red: 0.75·100 + 0.25·255 = 138.75 → 139; 112.5 → 113; 150.75 → 151
        Assert.Equal(new Rgb24(139, 113, 151), overlay[2, 1]);
        // blue: 75, 113, 0.75·201 + 63.75 = 214.5 → 215 (half away from zero)
        Assert.Equal(new Rgb24(75, 113, 215), overlay[4, 3]);
        // the photo itself is untouched
        Assert.Equal(new Rgb24(100, 150, 201), photo[2, 1]);
    }

    [Fact]
    public void Overlay_DefaultPaletteAndAlpha_Class0HalvesThePhoto()
    {
        using var photo = new Image<Rgb24>(3, 2, new Rgb24(101, 40, 255));
        using var overlay = SegmentationRenderer.Overlay(photo, new int[6], 3, 2);
        // alpha 0.5 over black: 50.5 → 51, 20, 127.5 → 128
        Assert.Equal(new Rgb24(51, 20, 128), overlay[1, 1]);
    }

    [Fact]
    public void Overlay_TransparentClassKeepsThePhoto()
    {
        using var photo = new Image<Rgb24>(2, 1, new Rgb24(10, 20, 30));
        int[] map = [255, 3];
        using var overlay = SegmentationRenderer.Overlay(photo, map, 2, 1, Palette.Generate(4), transparentClass: 255);
        Assert.Equal(new Rgb24(10, 20, 30), overlay[0, 0]);
        Assert.NotEqual(new Rgb24(10, 20, 30), overlay[1, 0]);
    }

    [Fact]
    public void Overlay_RejectsBadInput()
    {
        using var photo = new Image<Rgb24>(4, 3);
        Assert.Throws<ArgumentException>(() => SegmentationRenderer.Overlay(photo, new int[12], 3, 4));
        Assert.Throws<ArgumentException>(() => SegmentationRenderer.Overlay(photo, new int[11], 4, 3));
        var map = new int[12];
        map[5] = 3;
        Assert.Throws<ArgumentException>(() => SegmentationRenderer.Overlay(photo, map, 4, 3, Palette.Generate(3)));
        map[5] = -1;
        Assert.Throws<ArgumentException>(() => SegmentationRenderer.Overlay(photo, map, 4, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => SegmentationRenderer.Overlay(photo, new int[12], 4, 3, alpha: 1.5));
    }

    [Fact]
    public void DefaultPalette_Class0BlackAnd256DistinctColours()
    {
        var palette = Palette.Default;
        Assert.Equal(256, palette.Count);
        Assert.Equal(new Rgb24(0, 0, 0), palette[0]);
        Assert.Equal(256, palette.Colors.Distinct().Count());
        Assert.Equal(palette.Colors.Take(10), Palette.Generate(10).Colors);
        Assert.Throws<ArgumentOutOfRangeException>(() => palette[256]);
        Assert.Throws<ArgumentOutOfRangeException>(() => palette[-1]);
    }

    [Fact]
    public void DefaultPalette_ConsecutiveClassesAreFarApart()
    {
        var c = Palette.Default.Colors;
        for (int k = 1; k < 255; k++)
        {
            int distance = Math.Abs(c[k].R - c[k + 1].R) + Math.Abs(c[k].G - c[k + 1].G) + Math.Abs(c[k].B - c[k + 1].B);
            Assert.True(distance > 100, $"classes {k} and {k + 1}: {c[k]} vs {c[k + 1]}");
        }
    }

    [Fact]
    public void Palette_FromRgbTriples()
    {
        var palette = Palette.FromRgbTriples([1, 2, 3, 4, 5, 6]);
        Assert.Equal(2, palette.Count);
        Assert.Equal(new Rgb24(4, 5, 6), palette[1]);
        Assert.Throws<ArgumentException>(() => Palette.FromRgbTriples([1, 2]));
        Assert.Throws<ArgumentException>(() => new Palette([]));
    }
}
