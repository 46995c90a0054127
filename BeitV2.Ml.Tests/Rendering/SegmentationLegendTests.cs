using BeitV2.Ml.Imaging.Rendering;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Tests.Rendering;

/// <summary>The legend under a segmentation overlay, and the bitmap font it is written in.</summary>
public sealed class SegmentationLegendTests
{
    [Fact]
    public void Entries_AreTheClassesPresent_LargestFirst_WithTheirShares()
    {
        int[] map = [2, 2, 2, 0, 0, 7, 2, 0];
        var entries = SegmentationLegend.Entries(map, c => "class" + c);
        Assert.Equal([2, 0, 7], entries.Select(e => e.ClassIndex));
        Assert.Equal([0.5, 0.375, 0.125], entries.Select(e => e.Share));
        Assert.Equal("class2 50.0 %", SegmentationLegend.LineText(entries[0]));
    }

    [Fact]
    public void AppendBelow_KeepsThePicture_AndAddsOneSwatchPerClass()
    {
        using var picture = new Image<Rgb24>(30, 20, new Rgb24(10, 200, 30));
        var entries = new[] { new LegendEntry(3, "Pullover", 0.6), new LegendEntry(0, "background", 0.4) };
        using var image = SegmentationLegend.AppendBelow(picture, entries);

        Assert.True(image.Width > picture.Width);   // the legend is wider than a tiny picture
        Assert.True(image.Height > picture.Height);
        for (int y = 0; y < picture.Height; y++)
        for (int x = 0; x < picture.Width; x++)
            Assert.Equal(picture[x, y], image[x, y]);
        Assert.Equal(SegmentationLegend.Background, image[picture.Width + 1, 0]);
        int Count(Rgb24 c) => Enumerable.Range(picture.Height, image.Height - picture.Height)
            .Sum(y => Enumerable.Range(0, image.Width).Count(x => image[x, y] == c));
        int inner = (BitmapFont.CellHeight - 2) * (BitmapFont.CellHeight - 2);   // swatch inside its frame, scale 1
        Assert.Equal(inner, Count(Palette.Default[3]));
        Assert.Equal(inner, Count(Palette.Default[0]));
        Assert.True(Count(SegmentationLegend.TextColor) > 50);
    }

    [Fact]
    public void AVeryLongLabel_IsCut_SoTheLegendStaysNarrow()
    {
        using var picture = new Image<Rgb24>(30, 20);
        var entry = new LegendEntry(1, new string('w', 100_000), 1.0);
        var text = SegmentationLegend.LineText(entry);
        Assert.StartsWith(new string('w', SegmentationLegend.MaxLabelLength - 3) + "... 100.0 %", text);
        using var image = SegmentationLegend.AppendBelow(picture, [entry]);
        Assert.True(image.Width < 1000, $"the legend is {image.Width} px wide");
    }

    [Fact]
    public void ManyClasses_AreSummedUpInALastLine()
    {
        using var picture = new Image<Rgb24>(500, 10);
        var entries = Enumerable.Range(1, 20).Select(c => new LegendEntry(c, "c" + c, 0.05)).ToList();
        using var image = SegmentationLegend.AppendBelow(picture, entries);
        int scale = SegmentationLegend.ScaleFor(500), lineHeight = (BitmapFont.CellHeight + 4) * scale;
        Assert.Equal(2, scale);
        Assert.Equal(10 + 4 * scale + SegmentationLegend.MaxLines * lineHeight, image.Height);
    }

    [Fact]
    public void Font_DrawsLettersAndMeasuresThem()
    {
        Assert.Equal((36, 20), BitmapFont.Measure("abc", 2));
        // 'A' of misc-fixed 6x10: the apex in row 1, the crossbar in row 5.
        Assert.True(BitmapFont.IsSet('A', 2, 1));
        Assert.Equal([true, true, true, true, true, false], Enumerable.Range(0, 6).Select(x => BitmapFont.IsSet('A', x, 5)));
        Assert.False(BitmapFont.IsSet(' ', 2, 5));
        Assert.Equal(BitmapFont.IsSet('?', 2, 1), BitmapFont.IsSet('é', 2, 1));   // outside ASCII: '?'
    }
}
