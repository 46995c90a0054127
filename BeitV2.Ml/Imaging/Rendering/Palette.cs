using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>
/// Colours for class indices (entry i colours class i), used by the segmentation overlay.
/// </summary>
/// <remarks>
/// The ADE20K palette of the reference code is not available offline, so <see cref="Generate"/>
/// builds a fixed one:
/// <list type="bullet">
/// <item>class 0 is black (0,0,0), the usual "background": blended over a photo it just darkens it;</item>
/// <item>class k ≥ 1 has hue frac(k·0.618…) (golden-ratio steps: consecutive classes are the
/// golden angle, 137.5°, apart and no two classes share a hue), value cycling 1.0 / 0.8 / 0.6 with k mod 3 and
/// saturation alternating 0.9 / 0.6 with ⌊k/3⌋ mod 2.</item>
/// </list>
/// The colours depend on nothing but the index: palettes of different lengths agree on their common
/// prefix, and <see cref="Default"/> (256 entries, every value an 8-bit mask can hold) has 256
/// distinct colours. Any other palette (e.g. ADE20K's, loaded from a file) can be supplied instead.
/// </remarks>
public sealed class Palette
{
    private const double GoldenRatioConjugate = 0.6180339887498949; // (√5 − 1) / 2
    private static readonly double[] Values = [1.0, 0.8, 0.6];
    private static readonly double[] Saturations = [0.9, 0.6];

    private readonly Rgb24[] _colors;

    /// <summary>A palette with the given colours; entry i colours class i.</summary>
    /// <exception cref="ArgumentException">No colours were given.</exception>
    public Palette(IEnumerable<Rgb24> colors)
    {
        ArgumentNullException.ThrowIfNull(colors);
        _colors = colors.ToArray();
        if (_colors.Length == 0) throw new ArgumentException("A palette needs at least one colour.", nameof(colors));
    }

    /// <summary>The generated palette for all 256 values of an 8-bit mask.</summary>
    public static Palette Default { get; } = Generate(256);

    /// <summary>Number of classes the palette covers (0 … Count-1).</summary>
    public int Count => _colors.Length;

    /// <summary>The colours, entry i for class i.</summary>
    public IReadOnlyList<Rgb24> Colors => _colors;

    /// <summary>The colour of a class.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The class is negative or not covered by the palette.</exception>
    public Rgb24 this[int classIndex]
    {
        get
        {
            if ((uint)classIndex >= (uint)_colors.Length)
                throw new ArgumentOutOfRangeException(nameof(classIndex), classIndex,
                    $"The palette covers classes 0 to {_colors.Length - 1}.");
            return _colors[classIndex];
        }
    }

    /// <summary>The generated palette (see the remarks) with <paramref name="count"/> entries.</summary>
    public static Palette Generate(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var colors = new Rgb24[count];
        for (int k = 1; k < count; k++) colors[k] = GeneratedColor(k);
        return new Palette(colors); // colors[0] stays black
    }

    /// <summary>
    /// A palette from flat R,G,B byte triples, the layout of the palettes in mmsegmentation /
    /// PIL ("P" mode) files.
    /// </summary>
    /// <exception cref="ArgumentException">The length is zero or not a multiple of 3.</exception>
    public static Palette FromRgbTriples(ReadOnlySpan<byte> rgb)
    {
        if (rgb.Length == 0 || rgb.Length % 3 != 0)
            throw new ArgumentException($"Expected a non-empty multiple of 3 bytes (R,G,B per class), got {rgb.Length}.", nameof(rgb));
        var colors = new Rgb24[rgb.Length / 3];
        for (int i = 0; i < colors.Length; i++) colors[i] = new Rgb24(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
        return new Palette(colors);
    }

    private static Rgb24 GeneratedColor(int k)
    {
        double hue = k * GoldenRatioConjugate; // Hsv takes the fractional part
        return Hsv.ToRgb(hue, Saturations[k / 3 % 2], Values[k % 3]);
    }
}
