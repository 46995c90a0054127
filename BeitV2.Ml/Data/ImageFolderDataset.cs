using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// Images in folders, like torchvision's <c>ImageFolder</c>: <c>root/&lt;class&gt;/**/&lt;file&gt;</c> with
/// the class names sorted ordinally (the class index is the position in that order), or, when
/// the root has no class folders with images, the images directly in it as an
/// unlabelled set. Files are listed once at construction and decoded on every <see cref="Get"/>.
/// </summary>
/// <remarks>
/// Differences from torchvision: hidden files and folders (leading '.') and <c>__MACOSX</c> are
/// skipped; the extensions are <see cref="ImageFiles.Extensions"/> (no ppm/pgm/tif); images are decoded
/// with <see cref="ImageDecoder"/> (EXIF orientation applied by default, unlike PIL). Like
/// torchvision, a class folder without images is an error, and files directly in root are ignored
/// when there are class folders. Sorting is by UTF-16 code unit, which equals Python's code point
/// order except for names mixing astral characters with U+E000..U+FFFF.
/// </remarks>
public sealed class ImageFolderDataset : IImageDataset
{
    private readonly string[] _paths;
    private readonly int[] _labels;
    private readonly ImageDecoder _decoder;

    /// <summary>Lists the dataset.</summary>
    /// <param name="root">The dataset folder.</param>
    /// <param name="decoder">Decoder (and its limits) for the files; <see cref="ImageDecoder.Default"/> when null.</param>
    /// <exception cref="DatasetException">The folder is missing, holds no images, or a class folder is empty.</exception>
    public ImageFolderDataset(string root, ImageDecoder? decoder = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        Root = Path.GetFullPath(root);
        if (!Directory.Exists(Root))
            throw new DatasetException(DatasetError.NotFound, $"The dataset folder '{root}' does not exist.");
        _decoder = decoder ?? ImageDecoder.Default;

        var classDirs = Directory.EnumerateDirectories(Root)
            .Where(d => !ImageFiles.IsHidden(Path.GetFileName(d)))
            .ToList();
        classDirs.Sort(StringComparer.Ordinal);
        var perClass = classDirs.Select(ImageFiles.ListRecursive).ToList();

        var paths = new List<string>();
        var labels = new List<int>();
        if (perClass.Any(files => files.Count > 0))
        {
            var empty = classDirs.Where((_, i) => perClass[i].Count == 0).Select(Path.GetFileName).ToList();
            if (empty.Count > 0)
                throw new DatasetException(DatasetError.InvalidLayout,
                    $"Class folder(s) without images in '{root}': {string.Join(", ", empty.Take(10))}"
                    + $"{(empty.Count > 10 ? ", ..." : "")} (accepted extensions: {string.Join(" ", ImageFiles.Extensions)}).");
            for (int c = 0; c < perClass.Count; c++)
                foreach (var file in perClass[c])
                {
                    paths.Add(file);
                    labels.Add(c);
                }
            Kind = DatasetKind.Classification;
            ClassNames = classDirs.Select(d => Path.GetFileName(d)).ToArray();
        }
        else
        {
            paths.AddRange(ImageFiles.ListFlat(Root));
            if (paths.Count == 0)
                throw new DatasetException(DatasetError.InvalidLayout,
                    $"No images in '{root}': expected class folders (root/<class>/<image>) or images directly in the folder "
                    + $"(accepted extensions: {string.Join(" ", ImageFiles.Extensions)}).");
            labels.AddRange(Enumerable.Repeat(-1, paths.Count));
            Kind = DatasetKind.Unlabelled;
            ClassNames = [];
        }

        _paths = paths.ToArray();
        _labels = labels.ToArray();
    }

    /// <summary>Absolute path of the dataset folder.</summary>
    public string Root { get; }

    /// <inheritdoc/>
    public DatasetKind Kind { get; }

    /// <inheritdoc/>
    public int Count => _paths.Length;

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Absolute path of sample <paramref name="index"/>'s file.</summary>
    public string GetPath(int index) => _paths[index];

    /// <summary>Label of sample <paramref name="index"/> without decoding it (-1 when unlabelled).</summary>
    public int GetLabel(int index) => _labels[index];

    /// <inheritdoc/>
    public ImageSample Get(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return new ImageSample(DecodeRgb(_decoder, _paths[index], Root), _labels[index]);
    }

    /// <summary>Decodes a file into an RGB buffer, wrapping decode failures with the file's name.</summary>
    internal static RgbBuffer DecodeRgb(ImageDecoder decoder, string path, string root)
    {
        try
        {
            using var image = decoder.DecodeFile(path);
            return RgbBuffer.FromImage(image);
        }
        catch (ImageDecodeException ex)
        {
            throw new DatasetException(DatasetError.CorruptImage,
                $"Cannot decode '{Path.GetRelativePath(root, path)}': {ex.Message}", ex);
        }
    }
}
