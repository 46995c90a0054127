using BeitV2.Ml.Imaging;
using BeitV2.Ml.Imaging.Rendering;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Tests.Rendering;

public sealed class SegmentationGridTests
{
    private static SegmentationGrid.Scene Scene(int seed, int width, int height, int classes)
    {
        var random = new Random(seed);
        var rgb = new byte[width * height * 3];
        random.NextBytes(rgb);
        var truth = new byte[width * height];
        var prediction = new int[width * height];
        for (int i = 0; i < truth.Length; i++)
        {
            truth[i] = (byte)random.Next(classes);
            prediction[i] = random.Next(classes);
        }
        return new SegmentationGrid.Scene(new RgbBuffer(rgb, width, height), truth, prediction);
    }

    [Fact]
    public void Grid_HasTheLaidOutSize_AndEachCellIsItsSceneUpscaledInThePalettesColours()
    {
        const int w = 8, h = 6, classes = 11, scale = 4;
        var scenes = new[] { Scene(1, w, h, classes), Scene(2, w, h, classes) };

        var png = SegmentationGrid.RenderPng(scenes, classes, scale);

        // Width: 3 cells of 32 px and 4 gaps of 4 px = 112. Height: 2 rows of 24 px and 3 gaps = 60, then the legend:
        // (112 − 4) / 20 = 5 swatches a row, so 11 classes take 3 rows of 16 px + a 4 px gap = 60.
        PngAssert.Header(png, 112, 120, bitDepth: 8, colorType: 2);
        Assert.Equal((112, 120), SegmentationGrid.Size(2, w, h, classes, scale));
        using var image = Image.Load<Rgb24>(png);
        var palette = Palette.Default;
        for (int r = 0; r < scenes.Length; r++)
        {
            var s = scenes[r];
            // Every scene pixel, at one corner and the opposite corner of its 4x4 block.
            for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                foreach (var (dx, dy) in new[] { (0, 0), (3, 3) })
                {
                    int py = 4 + r * 28 + 4 * y + dy;
                    Assert.Equal(new Rgb24(s.Image.Pixels[3 * i], s.Image.Pixels[3 * i + 1], s.Image.Pixels[3 * i + 2]), image[4 + 4 * x + dx, py]);
                    Assert.Equal(palette[s.Truth[i]], image[40 + 4 * x + dx, py]);
                    Assert.Equal(palette[s.Prediction[i]], image[76 + 4 * x + dx, py]);
                }
            }
        }
        // The frame between cells and the legend swatches (class k at row k / 5, column k % 5).
        Assert.Equal(SegmentationGrid.Frame, image[37, 10]);
        Assert.Equal(SegmentationGrid.Frame, image[10, 30]);
        for (int k = 0; k < classes; k++)
        {
            int x0 = 4 + k % 5 * 20, y0 = 60 + k / 5 * 20;
            Assert.Equal(palette[k], image[x0, y0]);
            Assert.Equal(palette[k], image[x0 + 15, y0 + 15]);
            Assert.Equal(SegmentationGrid.Frame, image[x0 + 16, y0]);
            Assert.Equal((x0, y0), SegmentationGrid.SwatchOrigin(k, 2, w, h, classes, scale));
        }
        Assert.Equal(new Rgb24(0, 0, 0), palette[0]); // the background is black, as in the overlay
    }

    [Fact]
    public void Grid_RefusesScenesOfDifferentSizes_AndClassesWithoutAColour()
    {
        Assert.Throws<ArgumentException>(() => SegmentationGrid.Render([], 11));
        Assert.Throws<ArgumentException>(() => SegmentationGrid.Render([Scene(1, 8, 6, 11), Scene(2, 6, 8, 11)], 11));
        var small = new Palette([new Rgb24(0, 0, 0), new Rgb24(255, 0, 0)]);
        Assert.Throws<ArgumentException>(() => SegmentationGrid.Render([Scene(1, 8, 6, 11)], 11, palette: small));
        Assert.Throws<ArgumentOutOfRangeException>(() => SegmentationGrid.Render([Scene(1, 8, 6, 11)], 2, palette: small));
    }
}
