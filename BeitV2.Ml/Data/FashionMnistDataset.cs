using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// Fashion-MNIST (Zalando; 28×28 greyscale clothing images, 10 classes) read from its IDX files,
/// e.g. as installed by Debian's <c>dataset-fashion-mnist</c> package. Both files of a split are
/// read into memory once (60,000 × 784 bytes for train); samples are expanded to RGB (R = G = B)
/// on demand. Instances are immutable and thread-safe; <see cref="Subset"/> shares the memory.
/// </summary>
public sealed class FashionMnistDataset : IImageDataset
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> puts the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The class names in label order (0 = T-shirt/top … 9 = Ankle boot).</summary>
    public static IReadOnlyList<string> Classes { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private readonly byte[] _pixels;
    private readonly byte[] _labels;
    private readonly int[]? _indices; // null = all items in file order

    /// <summary>Reads a split.</summary>
    /// <param name="directory">Folder of the IDX files (gzipped <c>*.gz</c> or plain); <see cref="DefaultDirectory"/> when null.</param>
    /// <param name="split">Train (60,000) or test (10,000).</param>
    /// <exception cref="DatasetException">Files missing (<see cref="DatasetError.NotFound"/>) or malformed (<see cref="DatasetError.InvalidData"/>).</exception>
    public FashionMnistDataset(string? directory = null, FashionMnistSplit split = FashionMnistSplit.Train)
    {
        directory ??= DefaultDirectory;
        string prefix = split == FashionMnistSplit.Train ? "train" : "t10k";
        var imagesPath = Find(directory, $"{prefix}-images-idx3-ubyte");
        var labelsPath = Find(directory, $"{prefix}-labels-idx1-ubyte");

        var (imageShape, pixels) = IdxFile.ReadBytes(imagesPath, 3);
        var (labelShape, labels) = IdxFile.ReadBytes(labelsPath, 1);
        if (imageShape[0] != labelShape[0])
            throw new DatasetException(DatasetError.InvalidData,
                $"{Path.GetFileName(imagesPath)} holds {imageShape[0]} images but {Path.GetFileName(labelsPath)} {labelShape[0]} labels.");
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] >= Classes.Count)
                throw new DatasetException(DatasetError.InvalidData,
                    $"{Path.GetFileName(labelsPath)}: label {labels[i]} at index {i} is not a Fashion-MNIST class (0..9).");

        Split = split;
        ImageHeight = imageShape[1];
        ImageWidth = imageShape[2];
        _pixels = pixels;
        _labels = labels;
    }

    private FashionMnistDataset(FashionMnistDataset source, int[] indices)
    {
        Split = source.Split;
        ImageWidth = source.ImageWidth;
        ImageHeight = source.ImageHeight;
        _pixels = source._pixels;
        _labels = source._labels;
        _indices = indices;
    }

    /// <summary>Which split the items come from.</summary>
    public FashionMnistSplit Split { get; }

    /// <summary>Image width (28).</summary>
    public int ImageWidth { get; }

    /// <summary>Image height (28).</summary>
    public int ImageHeight { get; }

    /// <inheritdoc/>
    public DatasetKind Kind => DatasetKind.Classification;

    /// <inheritdoc/>
    public int Count => _indices?.Length ?? _labels.Length;

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => Classes;

    /// <summary>The label of item <paramref name="index"/> (0..9).</summary>
    public int GetLabel(int index) => _labels[FileIndex(index)];

    /// <summary>The 28×28 greyscale pixels of item <paramref name="index"/>, row-major (0 = background, 255 = ink).</summary>
    public ReadOnlySpan<byte> GetPixels(int index)
    {
        int plane = ImageWidth * ImageHeight;
        return _pixels.AsSpan(FileIndex(index) * plane, plane);
    }

    /// <inheritdoc/>
    public ImageSample Get(int index)
    {
        var grey = GetPixels(index);
        var rgb = new byte[grey.Length * 3];
        for (int i = 0, j = 0; i < grey.Length; i++, j += 3)
            rgb[j] = rgb[j + 1] = rgb[j + 2] = grey[i];
        return new ImageSample(new RgbBuffer(rgb, ImageWidth, ImageHeight), GetLabel(index));
    }

    /// <summary>The items at <paramref name="indices"/> (positions in this dataset) as a new dataset sharing the data.</summary>
    public FashionMnistDataset Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var map = new int[indices.Count];
        for (int i = 0; i < map.Length; i++) map[i] = FileIndex(indices[i]);
        return new FashionMnistDataset(this, map);
    }

    private int FileIndex(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return _indices is null ? index : _indices[index];
    }

    private static string Find(string directory, string baseName)
    {
        foreach (var candidate in new[] { baseName + ".gz", baseName })
        {
            var path = Path.Combine(directory, candidate);
            if (File.Exists(path)) return path;
        }
        throw new DatasetException(DatasetError.NotFound,
            $"Fashion-MNIST file '{baseName}[.gz]' not found in '{directory}' "
            + "(on Debian/Ubuntu: apt-get install dataset-fashion-mnist).");
    }
}
