using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// One decoded dataset item: an 8-bit RGB image, its class label (-1 when unlabelled) and, for
/// segmentation, its class map. Samples are created on demand by <see cref="IImageDataset.Get"/>
/// and not cached, so only the items being transformed are held in memory.
/// </summary>
public sealed class ImageSample
{
    /// <summary>The class index mmsegmentation ignores in the loss (<c>ignore_index</c>), also used for padding.</summary>
    public const byte IgnoreIndex = 255;

    /// <summary>Creates a sample.</summary>
    /// <param name="image">The image.</param>
    /// <param name="label">Class index, or -1 for an unlabelled image.</param>
    /// <param name="mask">Row-major class map of the image's size (0..254 classes, 255 = ignore), or null.</param>
    public ImageSample(RgbBuffer image, int label = -1, byte[]? mask = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(label, -1);
        if (mask is not null && mask.LongLength != (long)image.Width * image.Height)
            throw new ArgumentException(
                $"The mask has {mask.LongLength} values; the {image.Width}x{image.Height} image needs {(long)image.Width * image.Height}.",
                nameof(mask));
        Image = image;
        Label = label;
        Mask = mask;
    }

    /// <summary>The RGB image (HWC bytes).</summary>
    public RgbBuffer Image { get; }

    /// <summary>Class index, -1 when the sample has no image-level label.</summary>
    public int Label { get; }

    /// <summary>Per-pixel class indices, row-major, <see cref="Width"/>·<see cref="Height"/> bytes; null outside segmentation.</summary>
    public byte[]? Mask { get; }

    /// <summary>Image width.</summary>
    public int Width => Image.Width;

    /// <summary>Image height.</summary>
    public int Height => Image.Height;
}
