namespace BeitV2.Ml.Data;

/// <summary>Recognises the folder layouts the dataset readers understand.</summary>
public static class DatasetLayout
{
    /// <summary>
    /// Classifies <paramref name="root"/>: <c>images/</c> + <c>masks/</c> → segmentation
    /// (<see cref="SegmentationFolderDataset"/>), class folders with images → classification,
    /// images directly in the folder → unlabelled (<see cref="ImageFolderDataset"/>). The files are
    /// listed and paired, not decoded.
    /// </summary>
    /// <remarks>
    /// For a segmentation set without <c>classes.txt</c> every mask is read once to find the largest
    /// class index k, and the classes are named "class 0" … "class k".
    /// </remarks>
    /// <exception cref="DatasetException">No supported layout, or an inconsistent one.</exception>
    public static DatasetDescriptor Detect(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        var full = Path.GetFullPath(root);
        if (!Directory.Exists(full))
            throw new DatasetException(DatasetError.NotFound, $"The dataset folder '{root}' does not exist.");

        bool hasImages = Directory.Exists(Path.Combine(full, SegmentationFolderDataset.ImagesFolder));
        bool hasMasks = Directory.Exists(Path.Combine(full, SegmentationFolderDataset.MasksFolder));
        if (hasImages && hasMasks)
        {
            var seg = new SegmentationFolderDataset(full);
            IReadOnlyList<string> classes = seg.ClassNames;
            if (classes.Count == 0)
            {
                var found = seg.ScanClassIndices();
                int max = found.Length == 0 ? 0 : found[^1];
                classes = Enumerable.Range(0, max + 1).Select(i => $"class {i}").ToArray();
            }
            return new DatasetDescriptor(DatasetKind.Segmentation, full, seg.Count, classes);
        }
        if (hasMasks)
            throw new DatasetException(DatasetError.InvalidLayout,
                $"'{SegmentationFolderDataset.MasksFolder}/' found without '{SegmentationFolderDataset.ImagesFolder}/': "
                + "a segmentation dataset needs both folders.");

        var folder = new ImageFolderDataset(full);
        return new DatasetDescriptor(folder.Kind, full, folder.Count, folder.ClassNames);
    }
}
