using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>What <see cref="DatasetLayout.Detect"/> found in a folder.</summary>
/// <param name="Kind">Classification (class folders), segmentation (images/ + masks/) or unlabelled (flat).</param>
/// <param name="Root">Absolute path of the dataset folder.</param>
/// <param name="ImageCount">Number of images (samples).</param>
/// <param name="Classes">Class names (empty for unlabelled data).</param>
public sealed record DatasetDescriptor(DatasetKind Kind, string Root, int ImageCount, IReadOnlyList<string> Classes)
{
    /// <summary>Opens the dataset the descriptor describes.</summary>
    public IImageDataset Open(ImageDecoder? decoder = null) => Kind switch
    {
        DatasetKind.Segmentation => new SegmentationFolderDataset(Root, decoder, Classes),
        _ => new ImageFolderDataset(Root, decoder),
    };
}
