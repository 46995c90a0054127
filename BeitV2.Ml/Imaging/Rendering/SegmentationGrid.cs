using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>
/// A picture of a segmenter at work for the docs: one row per scene, the columns image | ground truth | prediction,
/// each cell the scene upscaled by an integer factor (nearest neighbour, so every model pixel stays a sharp square), the
/// class maps in the colours of the segment endpoint's overlay (<see cref="Palette.Default"/>), on a grey frame, with a
/// legend strip below: one swatch per class, class 0 first, left to right (ImageSharp 2 draws no text without
/// SixLabors.Fonts, so the names go with the picture, not in it).
/// </summary>
public static class SegmentationGrid
{
    /// <summary>Frame between and around the cells, in pixels.</summary>
    public const int Gap = 4;

    /// <summary>Side of a legend swatch.</summary>
    public const int SwatchSize = 16;

    /// <summary>The frame's colour: mid grey, so the black background of scenes and masks stays visible.</summary>
    public static readonly Rgb24 Frame = new(128, 128, 128);

    /// <summary>One scene: the image and two class maps of its size, row-major.</summary>
    public sealed record Scene(RgbBuffer Image, byte[] Truth, int[] Prediction);

    /// <summary>The picture's size for <paramref name="rows"/> scenes of <paramref name="width"/>×<paramref name="height"/>.</summary>
    public static (int Width, int Height) Size(int rows, int width, int height, int classes, int scale)
    {
        var (w, _, legendRows) = Layout(width, classes, scale);
        return (w, rows * (height * scale + Gap) + Gap + legendRows * (SwatchSize + Gap));
    }

    /// <summary>The top-left pixel of legend swatch <paramref name="classIndex"/> in a picture of <paramref name="rows"/> scenes.</summary>
    public static (int X, int Y) SwatchOrigin(int classIndex, int rows, int width, int height, int classes, int scale)
    {
        var (_, perRow, _) = Layout(width, classes, scale);
        return (Gap + classIndex % perRow * (SwatchSize + Gap), rows * (height * scale + Gap) + Gap + classIndex / perRow * (SwatchSize + Gap));
    }

    /// <summary>The top-left pixel of cell (<paramref name="row"/>, <paramref name="column"/>): column 0 the image, 1 the truth, 2 the prediction.</summary>
    public static (int X, int Y) CellOrigin(int row, int column, int width, int height, int scale) =>
        (Gap + column * (width * scale + Gap), Gap + row * (height * scale + Gap));

    /// <summary>Draws the grid; the caller disposes the image.</summary>
    /// <param name="classes">classes in the legend (0 … classes − 1).</param>
    /// <exception cref="ArgumentException">no scenes, scenes of different sizes, maps of the wrong size, or a class without a colour.</exception>
    public static Image<Rgb24> Render(IReadOnlyList<Scene> scenes, int classes, int scale = 4, Palette? palette = null)
    {
        ArgumentNullException.ThrowIfNull(scenes);
        if (scenes.Count == 0) throw new ArgumentException("The grid needs at least one scene.", nameof(scenes));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(scale);
        palette ??= Palette.Default;
        if (classes > palette.Count) throw new ArgumentException($"{classes} classes, but the palette has {palette.Count} colours.", nameof(classes));
        int w = scenes[0].Image.Width, h = scenes[0].Image.Height;
        foreach (var s in scenes)
        {
            if (s.Image.Width != w || s.Image.Height != h)
                throw new ArgumentException($"All scenes must have one size; {s.Image.Width}x{s.Image.Height} is not {w}x{h}.", nameof(scenes));
            if (s.Truth.Length != w * h || s.Prediction.Length != w * h)
                throw new ArgumentException($"A {w}x{h} scene needs class maps of {w * h} values.", nameof(scenes));
        }

        var (width, height) = Size(scenes.Count, w, h, classes, scale);
        var pixels = new Rgb24[width * height];
        Array.Fill(pixels, Frame);
        for (int r = 0; r < scenes.Count; r++)
        {
            var s = scenes[r];
            var rgb = s.Image.Pixels;
            var truth = s.Truth;
            var prediction = s.Prediction;
            Cell(r, 0, i => new Rgb24(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]));
            Cell(r, 1, i => palette[truth[i]]);
            Cell(r, 2, i => palette[prediction[i]]);
        }
        for (int k = 0; k < classes; k++)
        {
            var (x0, y0) = SwatchOrigin(k, scenes.Count, w, h, classes, scale);
            for (int y = 0; y < SwatchSize; y++)
                Array.Fill(pixels, palette[k], (y0 + y) * width + x0, SwatchSize);
        }
        return Image.LoadPixelData<Rgb24>(pixels, width, height);

        void Cell(int row, int column, Func<int, Rgb24> colourOf)
        {
            var (x0, y0) = CellOrigin(row, column, w, h, scale);
            for (int y = 0; y < h * scale; y++)
            for (int x = 0; x < w * scale; x++)
                pixels[(y0 + y) * width + x0 + x] = colourOf(y / scale * w + x / scale);
        }
    }

    /// <summary><see cref="Render"/> encoded as an RGB PNG.</summary>
    public static byte[] RenderPng(IReadOnlyList<Scene> scenes, int classes, int scale = 4, Palette? palette = null)
    {
        using var image = Render(scenes, classes, scale, palette);
        return PngOutput.EncodeRgb(image);
    }

    private static (int Width, int PerRow, int LegendRows) Layout(int width, int classes, int scale)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(scale);
        int total = 3 * width * scale + 4 * Gap;
        int perRow = Math.Max(1, (total - Gap) / (SwatchSize + Gap));
        return (total, perRow, (classes + perRow - 1) / perRow);
    }
}
