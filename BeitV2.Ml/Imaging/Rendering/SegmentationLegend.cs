using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>One line of a segmentation legend: a class, its name and the share of the picture's pixels it covers.</summary>
public sealed record LegendEntry(int ClassIndex, string Label, double Share);

/// <summary>
/// The legend under a segmentation overlay (<c>POST /api/v1/segment?format=overlay</c>): one line per class
/// present, largest first, each a swatch of the class's palette colour and "label 12.3 %", drawn with
/// <see cref="BitmapFont"/> on a white strip below the picture.
/// </summary>
/// <remarks>
/// The picture is kept pixel for pixel at the top left; the output is as wide as the wider of picture and legend
/// (a 28-pixel image gets a legend wider than itself), the strip below it white. Text is drawn at twice the font's
/// size for pictures at least 400 pixels wide, so it stays legible next to a large photo. At most
/// <see cref="MaxLines"/> classes get a line; the rest are summed up in a last line.
/// </remarks>
public static class SegmentationLegend
{
    /// <summary>Classes listed one per line; more are summed up in one "+N more" line.</summary>
    public const int MaxLines = 12;

    /// <summary>Background of the legend strip.</summary>
    public static Rgb24 Background { get; } = new(255, 255, 255);

    /// <summary>Colour of the legend's text.</summary>
    public static Rgb24 TextColor { get; } = new(24, 24, 24);

    /// <summary>The 1-pixel frame around each swatch, so black and white classes show against the strip.</summary>
    public static Rgb24 SwatchFrame { get; } = new(128, 128, 128);

    /// <summary>The classes of a class map with their pixel shares, largest first (ties by class index).</summary>
    public static IReadOnlyList<LegendEntry> Entries(ReadOnlySpan<int> classMap, Func<int, string> label)
    {
        ArgumentNullException.ThrowIfNull(label);
        var counts = new Dictionary<int, int>();
        foreach (var c in classMap) counts[c] = counts.GetValueOrDefault(c) + 1;
        double total = Math.Max(1, classMap.Length);
        return counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key)
            .Select(kv => new LegendEntry(kv.Key, label(kv.Key), kv.Value / total)).ToList();
    }

    /// <summary>Labels longer than this are cut (an imported model's labels file may hold any line): the legend's width stays bounded.</summary>
    public const int MaxLabelLength = 48;

    /// <summary>The text of one legend line.</summary>
    public static string LineText(LegendEntry entry)
    {
        var label = entry.Label.Length <= MaxLabelLength ? entry.Label : entry.Label[..(MaxLabelLength - 3)] + "...";
        return $"{label} {(entry.Share * 100).ToString("0.0", CultureInfo.InvariantCulture)} %";
    }

    /// <summary>The text scale used for a picture of this width.</summary>
    public static int ScaleFor(int pictureWidth) => pictureWidth >= 400 ? 2 : 1;

    /// <summary>A new image: <paramref name="picture"/> with the legend below it. The caller disposes it.</summary>
    /// <exception cref="ArgumentException">A class has no colour in the palette.</exception>
    public static Image<Rgb24> AppendBelow(Image<Rgb24> picture, IReadOnlyList<LegendEntry> entries, Palette? palette = null)
    {
        ArgumentNullException.ThrowIfNull(picture);
        ArgumentNullException.ThrowIfNull(entries);
        palette ??= Palette.Default;
        foreach (var e in entries)
            if ((uint)e.ClassIndex >= (uint)palette.Count)
                throw new ArgumentException($"Class {e.ClassIndex} has no colour in a palette of {palette.Count}.", nameof(entries));

        var lines = entries.Take(entries.Count > MaxLines ? MaxLines - 1 : MaxLines)
            .Select(e => ((int?)e.ClassIndex, LineText(e))).ToList();
        if (entries.Count > lines.Count)
        {
            var rest = entries.Skip(lines.Count).ToList();
            lines.Add((null, $"+{rest.Count} more classes {(rest.Sum(e => e.Share) * 100).ToString("0.0", CultureInfo.InvariantCulture)} %"));
        }

        int scale = ScaleFor(picture.Width);
        int pad = 4 * scale, swatch = BitmapFont.CellHeight * scale, lineHeight = swatch + pad;
        int textX = pad + swatch + pad;
        int legendWidth = lines.Count == 0 ? 0 : textX + lines.Max(l => BitmapFont.Measure(l.Item2, scale).Width) + pad;
        int width = Math.Max(picture.Width, legendWidth);
        int height = picture.Height + pad + lines.Count * lineHeight;

        var image = new Image<Rgb24>(width, height, Background);
        image.ProcessPixelRows(picture, (target, source) =>
        {
            for (int y = 0; y < source.Height; y++) source.GetRowSpan(y).CopyTo(target.GetRowSpan(y));
        });
        for (int i = 0; i < lines.Count; i++)
        {
            var (classIndex, text) = lines[i];
            int top = picture.Height + pad + i * lineHeight;
            if (classIndex is { } c) FillSwatch(image, pad, top, swatch, palette[c]);
            BitmapFont.Draw(image, textX, top, text, TextColor, scale);
        }
        return image;
    }

    // A size×size square of the class colour inside a 1-pixel frame.
    private static void FillSwatch(Image<Rgb24> image, int left, int top, int size, Rgb24 color)
    {
        for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
        {
            bool frame = x == 0 || y == 0 || x == size - 1 || y == size - 1;
            image[left + x, top + y] = frame ? SwatchFrame : color;
        }
    }
}
