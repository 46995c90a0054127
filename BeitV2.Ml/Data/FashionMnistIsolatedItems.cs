namespace BeitV2.Ml.Data;

/// <summary>
/// Each Fashion-MNIST item alone on the black canvas of <see cref="FashionMnistSegmentationDataset"/>: unscaled, centred,
/// pasted with that set's rule and threshold, so its mask is the scene set's mask of a one-item scene (class 1 + label on
/// the item's pixels brighter than the threshold, background elsewhere), and its <see cref="ImageSample.Label"/> is the
/// item's Fashion-MNIST label. It shows a segmenter the same item a classifier sees at 28 px, in the setting the
/// segmenter was trained in (the scene canvas, which its evaluation transform resizes to its input size).
/// </summary>
public sealed class FashionMnistIsolatedItems : IImageDataset
{
    private readonly FashionMnistDataset _source;

    /// <summary>Places the items of <paramref name="source"/> on the canvas of <paramref name="options"/> (its size and threshold).</summary>
    /// <exception cref="ArgumentException">The canvas is smaller than an item.</exception>
    public FashionMnistIsolatedItems(FashionMnistDataset source, FashionMnistSegmentationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        Options = (options ?? new FashionMnistSegmentationOptions()).Validate();
        if (Options.CanvasSize < source.ImageWidth || Options.CanvasSize < source.ImageHeight)
            throw new ArgumentException(
                $"A {source.ImageWidth}x{source.ImageHeight} item does not fit on a {Options.CanvasSize} px canvas unscaled.", nameof(options));
    }

    /// <summary>The scene settings used: <see cref="FashionMnistSegmentationOptions.CanvasSize"/> and <see cref="FashionMnistSegmentationOptions.Threshold"/>.</summary>
    public FashionMnistSegmentationOptions Options { get; }

    /// <inheritdoc/>
    public DatasetKind Kind => DatasetKind.Segmentation;

    /// <inheritdoc/>
    public int Count => _source.Count;

    /// <summary>The scene set's classes: "background", then the 10 Fashion-MNIST classes.</summary>
    public IReadOnlyList<string> ClassNames { get; } = ["background", .. FashionMnistDataset.Classes];

    /// <inheritdoc/>
    public ImageSample Get(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        int canvas = Options.CanvasSize, w = _source.ImageWidth, h = _source.ImageHeight;
        var grey = new byte[canvas * canvas];
        var mask = new byte[canvas * canvas];
        int label = _source.GetLabel(index);
        FashionMnistSegmentationDataset.Paste(grey, mask, canvas, _source.GetPixels(index), w, h,
            (canvas - w) / 2, (canvas - h) / 2, (byte)(1 + label), Options.Threshold);
        return new ImageSample(FashionMnistSegmentationDataset.ToRgb(grey, canvas), label, mask);
    }
}
