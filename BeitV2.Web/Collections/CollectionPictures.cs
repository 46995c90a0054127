using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Imaging.Rendering;
using BeitV2.Web.Errors;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Collections;

/// <summary>
/// The pictures of a collection's items, drawn on request: thumbnails (at most <see cref="ThumbnailSide"/> px) and patch
/// crops (the patch's square of the tokenizer's view, upscaled). Dataset items are read from the dataset (a Fashion-MNIST
/// item is 784 bytes in memory: storing 70,000 PNGs would cost more disk and indexing time than drawing the few a page
/// shows); uploaded items from the small copy kept at upload (<see cref="StoredSide"/> px).
/// </summary>
public sealed class CollectionPictures(CollectionStore store, DatasetItems datasets)
{
    public const int ThumbnailSide = 96;
    /// <summary>The longer side of the copy of an uploaded image the collection keeps (thumbnails and patch crops are drawn from it).</summary>
    public const int StoredSide = 256;
    /// <summary>The smallest side of a patch crop.</summary>
    public const int MinCropSide = 48;

    /// <summary>The path of an uploaded item's stored copy.</summary>
    public static string UploadFile(long item) => Path.Combine(CollectionFiles.Uploads, $"{item}.png");

    /// <summary>The copy of an uploaded image to keep: its longer side at most <see cref="StoredSide"/>.</summary>
    public static byte[] StoredCopy(Image<Rgb24> image) => Png(Shrink(RgbBuffer.FromImage(image), StoredSide));

    public byte[] Thumbnail(CollectionRecord collection, long item, CollectionItem entry) =>
        Png(Shrink(Source(collection, item, entry), ThumbnailSide));

    /// <summary>The patch (<paramref name="row"/>, <paramref name="col"/>) of the tokenizer's view of the item, upscaled to at least <see cref="MinCropSide"/> px.</summary>
    public byte[] Patch(CollectionRecord collection, long item, CollectionItem entry, int row, int col)
    {
        var input = collection.TokenizerInput ?? throw new ConflictException($"Collection '{collection.Id}' has no token maps yet.");
        var view = View(Source(collection, item, entry), input);
        var side = view.Width / collection.Cols;
        var scale = Math.Max(1, (MinCropSide + side - 1) / side);
        var crop = new byte[side * scale * side * scale * 3];
        for (var y = 0; y < side * scale; y++)
            for (var x = 0; x < side * scale; x++)
            {
                var from = ((row * side + y / scale) * view.Width + col * side + x / scale) * 3;
                var to = (y * side * scale + x) * 3;
                crop[to] = view.Pixels[from];
                crop[to + 1] = view.Pixels[from + 1];
                crop[to + 2] = view.Pixels[from + 2];
            }
        return Png(new RgbBuffer(crop, side * scale, side * scale));
    }

    /// <summary>The square the tokenizer sees (its input size): the centre crop or the full resize its preprocessing says, as <c>ModelInput</c> makes it.</summary>
    private static RgbBuffer View(RgbBuffer image, ModelPreprocessing input)
    {
        if (input.CropMode == ModelPreprocessing.CenterCrop)
            return new EvalTransform(input.InputSize, input.CropPct, input.Normalization).CropU8(image);
        return image.Width == input.InputSize && image.Height == input.InputSize ? image : PilResize.Resize(image, input.InputSize, input.InputSize);
    }

    private RgbBuffer Source(CollectionRecord collection, long item, CollectionItem entry)
    {
        if (!entry.Uploaded) return datasets.Open(collection.Dataset).Get(entry.DatasetIndex).Image;
        using var file = store.OpenRead(collection.Id, UploadFile(item));
        using var image = Image.Load<Rgb24>(file);
        return RgbBuffer.FromImage(image);
    }

    private static RgbBuffer Shrink(RgbBuffer image, int side)
    {
        var longer = Math.Max(image.Width, image.Height);
        if (longer <= side) return image;
        var (w, h) = (Math.Max(1, (int)Math.Round((double)image.Width * side / longer)), Math.Max(1, (int)Math.Round((double)image.Height * side / longer)));
        return PilResize.Resize(image, w, h);
    }

    private static byte[] Png(RgbBuffer image)
    {
        using var picture = image.ToImage();
        return PngOutput.EncodeRgb(picture);
    }
}
