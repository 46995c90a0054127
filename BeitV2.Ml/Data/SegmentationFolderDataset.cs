using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// A segmentation set in two folders: <c>root/images/&lt;stem&gt;.&lt;ext&gt;</c> and
/// <c>root/masks/&lt;stem&gt;.png</c>, paired by file stem, plus an optional <c>root/classes.txt</c>
/// (one class name per line, the line number being the class index).
/// </summary>
/// <remarks>
/// <para>A mask is a PNG whose sample values are class indices (8-bit greyscale, or palette indices as
/// in VOC/ADE20K-style masks; see <see cref="ClassMapPng"/>), the size of its image. Value 255 is
/// mmsegmentation's ignore index (not counted as a class). The values are used as they are: no
/// <c>reduce_zero_label</c> shift.</para>
/// <para>Images are decoded <b>without</b> applying EXIF orientation, like PIL/mmcv, so that a
/// rotated phone photo stays aligned with its mask.</para>
/// <para>Pairing is checked at construction (every image needs a mask and vice versa, stems must be
/// unique); sizes and class values are checked when a sample is loaded.</para>
/// </remarks>
public sealed class SegmentationFolderDataset : IImageDataset
{
    /// <summary>Folder of the images.</summary>
    public const string ImagesFolder = "images";

    /// <summary>Folder of the masks.</summary>
    public const string MasksFolder = "masks";

    /// <summary>Optional class-name file.</summary>
    public const string ClassesFile = "classes.txt";

    private readonly string[] _images;
    private readonly string[] _masks;
    private readonly ImageDecoder _decoder;

    /// <summary>Lists and pairs the files.</summary>
    /// <param name="root">Folder holding <c>images/</c>, <c>masks/</c> and optionally <c>classes.txt</c>.</param>
    /// <param name="decoder">Image decoder; by default one with the default limits and no EXIF rotation.</param>
    /// <param name="classNames">Class names to use instead of <c>classes.txt</c> (e.g. generated from <see cref="ScanClassIndices"/>).</param>
    /// <exception cref="DatasetException">Missing folders, unpaired files, or a malformed classes.txt.</exception>
    public SegmentationFolderDataset(string root, ImageDecoder? decoder = null, IReadOnlyList<string>? classNames = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        Root = Path.GetFullPath(root);
        var imagesDir = Path.Combine(Root, ImagesFolder);
        var masksDir = Path.Combine(Root, MasksFolder);
        if (!Directory.Exists(imagesDir) || !Directory.Exists(masksDir))
            throw new DatasetException(DatasetError.NotFound,
                $"A segmentation dataset needs the folders '{ImagesFolder}/' and '{MasksFolder}/' in '{root}'.");
        _decoder = decoder ?? new ImageDecoder(applyExifOrientation: false);

        var images = ByStem(ImageFiles.ListFlat(imagesDir), ImagesFolder);
        var masks = ByStem(Directory.EnumerateFiles(masksDir)
            .Where(f => !ImageFiles.IsHidden(Path.GetFileName(f)))
            .ToList(), MasksFolder);
        var nonPng = masks.Values.Where(m => !m.EndsWith(".png", StringComparison.OrdinalIgnoreCase)).ToList();
        if (nonPng.Count > 0)
            throw new DatasetException(DatasetError.InvalidLayout,
                $"Masks must be PNG files; found {List(nonPng.Select(Path.GetFileName))} in '{MasksFolder}/'.");

        var noMask = images.Keys.Where(s => !masks.ContainsKey(s)).ToList();
        if (noMask.Count > 0)
            throw new DatasetException(DatasetError.InvalidLayout,
                $"{noMask.Count} image(s) have no mask '{MasksFolder}/<stem>.png': {List(noMask.Select(s => Path.GetFileName(images[s])))}.");
        var noImage = masks.Keys.Where(s => !images.ContainsKey(s)).ToList();
        if (noImage.Count > 0)
            throw new DatasetException(DatasetError.InvalidLayout,
                $"{noImage.Count} mask(s) have no image in '{ImagesFolder}/': {List(noImage.Select(s => Path.GetFileName(masks[s])))}.");
        if (images.Count == 0)
            throw new DatasetException(DatasetError.InvalidLayout,
                $"No images in '{ImagesFolder}/' (accepted extensions: {string.Join(" ", ImageFiles.Extensions)}).");

        var stems = images.Keys.ToList();
        stems.Sort(StringComparer.Ordinal);
        _images = stems.Select(s => images[s]).ToArray();
        _masks = stems.Select(s => masks[s]).ToArray();

        var classesPath = Path.Combine(Root, ClassesFile);
        ClassNames = classNames?.ToArray() ?? (File.Exists(classesPath) ? ReadClassNames(classesPath) : []);
        if (ClassNames.Count > ImageSample.IgnoreIndex)
            throw new DatasetException(DatasetError.InvalidData,
                $"{ClassNames.Count} classes; 8-bit masks allow at most {ImageSample.IgnoreIndex} (255 is the ignore index).");
    }

    /// <summary>Absolute path of the dataset folder.</summary>
    public string Root { get; }

    /// <inheritdoc/>
    public DatasetKind Kind => DatasetKind.Segmentation;

    /// <inheritdoc/>
    public int Count => _images.Length;

    /// <summary>Names from <c>classes.txt</c> or the constructor; empty when neither gives any.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Path of sample <paramref name="index"/>'s image.</summary>
    public string GetImagePath(int index) => _images[index];

    /// <summary>Path of sample <paramref name="index"/>'s mask.</summary>
    public string GetMaskPath(int index) => _masks[index];

    /// <inheritdoc/>
    /// <exception cref="DatasetException">Undecodable image, invalid mask, size mismatch, or a class index beyond <see cref="ClassNames"/>.</exception>
    public ImageSample Get(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        var image = ImageFolderDataset.DecodeRgb(_decoder, _images[index], Root);
        var mask = ReadMask(index);
        if (mask.Width != image.Width || mask.Height != image.Height)
            throw new DatasetException(DatasetError.InvalidMask,
                $"Mask '{Relative(_masks[index])}' is {mask.Width}x{mask.Height} but its image '{Relative(_images[index])}' "
                + $"is {image.Width}x{image.Height}; a mask must have the size of its image.");
        if (ClassNames.Count > 0)
            foreach (byte v in mask.Indices)
                if (v >= ClassNames.Count && v != ImageSample.IgnoreIndex)
                    throw new DatasetException(DatasetError.InvalidMask,
                        $"Mask '{Relative(_masks[index])}' contains class {v}, but there are only {ClassNames.Count} classes "
                        + $"(0..{ClassNames.Count - 1}; 255 = ignore).");
        return new ImageSample(image, -1, mask.Indices);
    }

    /// <summary>
    /// Reads every mask and returns the class indices that occur (sorted, without 255): the way to
    /// size a model when there is no <c>classes.txt</c>. Costs one PNG inflate per mask.
    /// </summary>
    public int[] ScanClassIndices()
    {
        var seen = new bool[256];
        for (int i = 0; i < Count; i++)
            foreach (byte v in ReadMask(i).Indices) seen[v] = true;
        return Enumerable.Range(0, ImageSample.IgnoreIndex).Where(v => seen[v]).ToArray();
    }

    private (byte[] Indices, int Width, int Height) ReadMask(int index)
    {
        var path = _masks[index];
        return ClassMapPng.Read(File.ReadAllBytes(path), Relative(path));
    }

    private string Relative(string path) => Path.GetRelativePath(Root, path);

    /// <summary>Reads <c>classes.txt</c>: one name per line, trailing blank lines ignored, no blank lines in between.</summary>
    public static string[] ReadClassNames(string path)
    {
        var lines = File.ReadAllLines(path).Select(l => l.Trim()).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        int blank = lines.FindIndex(l => l.Length == 0);
        if (blank >= 0)
            throw new DatasetException(DatasetError.InvalidData,
                $"{Path.GetFileName(path)}: line {blank + 1} is empty; every line names the class with that index (from 0).");
        if (lines.Count == 0)
            throw new DatasetException(DatasetError.InvalidData, $"{Path.GetFileName(path)} lists no classes.");
        return lines.ToArray();
    }

    private static Dictionary<string, string> ByStem(List<string> files, string folder)
    {
        var byStem = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            var stem = Path.GetFileNameWithoutExtension(f);
            if (!byStem.TryAdd(stem, f))
                throw new DatasetException(DatasetError.InvalidLayout,
                    $"Two files in '{folder}/' share the name '{stem}': '{Path.GetFileName(byStem[stem])}' and '{Path.GetFileName(f)}'.");
        }
        return byStem;
    }

    private static string List(IEnumerable<string?> names)
    {
        var list = names.Take(6).ToList();
        return string.Join(", ", list.Take(5)) + (list.Count > 5 ? ", ..." : "");
    }
}
