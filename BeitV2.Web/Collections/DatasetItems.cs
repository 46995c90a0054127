using System.Collections.Concurrent;
using BeitV2.Ml.Data;
using BeitV2.Web.Datasets;

namespace BeitV2.Web.Collections;

/// <summary>
/// A dataset's images in the order a collection numbers them: the training split, then the held-out one (for Fashion-MNIST
/// the 60,000 training images, then the 10,000 test images). Opened once per dataset and server: thumbnails read single
/// items from it on request.
/// </summary>
public sealed class DatasetItems(DatasetCatalog catalog)
{
    private readonly ConcurrentDictionary<string, (DateTimeOffset? Created, IImageDataset Items)> open = new(StringComparer.Ordinal);

    /// <exception cref="Errors.NotFoundException">the dataset does not exist (any more).</exception>
    public IImageDataset Open(string datasetId)
    {
        var info = catalog.Get(datasetId);
        if (open.TryGetValue(datasetId, out var cached) && cached.Created == info.CreatedAt) return cached.Items;
        var (train, validation) = catalog.Open(datasetId, null, null, seed: 0);
        IImageDataset all = validation is null ? train : new Concatenated(train, validation);
        open[datasetId] = (info.CreatedAt, all);
        return all;
    }

    /// <summary>Two datasets one after the other.</summary>
    private sealed class Concatenated(IImageDataset first, IImageDataset second) : IImageDataset
    {
        public DatasetKind Kind => first.Kind;
        public int Count => first.Count + second.Count;
        public IReadOnlyList<string> ClassNames => first.ClassNames;
        public ImageSample Get(int index) => index < first.Count ? first.Get(index) : second.Get(index - first.Count);
    }
}
