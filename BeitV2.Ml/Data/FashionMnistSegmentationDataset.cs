using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// A synthetic semantic-segmentation set composed from Fashion-MNIST items: each scene is a black
/// square canvas with 1–3 clothing items at random positions, and its mask labels every pixel
/// with the class of the item drawn there (11 classes: 0 = background, 1 + Fashion-MNIST label
/// for the items, see <see cref="ClassNames"/>).
/// </summary>
/// <remarks>
/// <para>Scene <c>i</c> is a pure function of (<see cref="FashionMnistSegmentationOptions.Seed"/>, i),
/// so the set needs no storage and any thread can build any scene. The first item of scene i is
/// source item <c>i mod source.Count</c> (so a pass over the set shows every source item); the
/// others are drawn uniformly. Per item: a scale in [MinScale, MaxScale] (side = round(28·scale),
/// resampled with Pillow's bicubic filter when not 28, capped at the canvas size), then a uniformly random top-left corner
/// such that the item lies fully on the canvas. Items may overlap.</para>
/// <para>Pasting item pixel value v over the canvas: if v &gt; <see cref="FashionMnistSegmentationOptions.Threshold"/>
/// the canvas pixel becomes v and the mask becomes the item's class (later items occlude earlier
/// ones); otherwise the canvas keeps max(canvas, v) and the mask is unchanged. So the mask marks
/// exactly the pixels brighter than the threshold, with the class of the item that is visible there,
/// and faint item borders stay in the image as background.</para>
/// </remarks>
public sealed class FashionMnistSegmentationDataset : IImageDataset
{
    /// <summary>Mask value of pixels no item covers.</summary>
    public const byte BackgroundClass = 0;

    private readonly FashionMnistDataset _source;

    /// <summary>Creates the set over <paramref name="source"/> (a split or a subset of one).</summary>
    public FashionMnistSegmentationDataset(FashionMnistDataset source, FashionMnistSegmentationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Count == 0) throw new ArgumentException("The source has no items.", nameof(source));
        _source = source;
        Options = (options ?? new FashionMnistSegmentationOptions()).Validate();
        Count = Options.Count ?? source.Count;
    }

    /// <summary>The composition settings.</summary>
    public FashionMnistSegmentationOptions Options { get; }

    /// <inheritdoc/>
    public DatasetKind Kind => DatasetKind.Segmentation;

    /// <inheritdoc/>
    public int Count { get; }

    /// <summary>"background", then the 10 Fashion-MNIST classes (index = 1 + Fashion-MNIST label).</summary>
    public IReadOnlyList<string> ClassNames { get; } = ["background", .. FashionMnistDataset.Classes];

    /// <inheritdoc/>
    public ImageSample Get(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        int canvas = Options.CanvasSize;
        var grey = new byte[canvas * canvas];
        var mask = new byte[canvas * canvas]; // all BackgroundClass
        var random = SeedMixer.Create(Options.Seed, index);

        int items = random.Next(Options.MinItems, Options.MaxItems + 1);
        for (int k = 0; k < items; k++)
        {
            int item = k == 0 ? index % _source.Count : random.Next(_source.Count);
            double scale = Options.MinScale + (Options.MaxScale - Options.MinScale) * random.NextDouble();
            int w = Math.Clamp((int)Math.Round(_source.ImageWidth * scale, MidpointRounding.ToEven), 1, canvas);
            int h = Math.Clamp((int)Math.Round(_source.ImageHeight * scale, MidpointRounding.ToEven), 1, canvas);
            ReadOnlySpan<byte> pixels = w == _source.ImageWidth && h == _source.ImageHeight
                ? _source.GetPixels(item)
                : PilResize.Resize(_source.GetPixels(item), _source.ImageWidth, _source.ImageHeight, 1, w, h);
            int left = random.Next(0, canvas - w + 1);
            int top = random.Next(0, canvas - h + 1);
            Paste(grey, mask, canvas, pixels, w, h, left, top, (byte)(1 + _source.GetLabel(item)), Options.Threshold);
        }
        return new ImageSample(ToRgb(grey, canvas), -1, mask);
    }

    /// <summary>
    /// Pastes a <paramref name="w"/>×<paramref name="h"/> grey item at (<paramref name="left"/>, <paramref name="top"/>) of
    /// a square canvas and its mask: pixels brighter than <paramref name="threshold"/> replace the canvas and take class
    /// <paramref name="cls"/> in the mask, fainter ones only brighten the canvas (see the remarks of the class).
    /// </summary>
    internal static void Paste(Span<byte> grey, Span<byte> mask, int canvas, ReadOnlySpan<byte> pixels, int w, int h,
        int left, int top, byte cls, int threshold)
    {
        for (int y = 0; y < h; y++)
        {
            int dst = (top + y) * canvas + left;
            for (int x = 0; x < w; x++, dst++)
            {
                byte v = pixels[y * w + x];
                if (v > threshold)
                {
                    grey[dst] = v;
                    mask[dst] = cls;
                }
                else if (v > grey[dst])
                {
                    grey[dst] = v;
                }
            }
        }
    }

    /// <summary>A square grey canvas as RGB with three equal channels.</summary>
    internal static RgbBuffer ToRgb(byte[] grey, int canvas)
    {
        var rgb = new byte[grey.Length * 3];
        for (int i = 0, j = 0; i < grey.Length; i++, j += 3)
            rgb[j] = rgb[j + 1] = rgb[j + 2] = grey[i];
        return new RgbBuffer(rgb, canvas, canvas);
    }
}
