namespace BeitV2.Ml.Data;

/// <summary>A view of some items of another dataset, in the given order (torch's <c>Subset</c>).</summary>
public sealed class DatasetSubset : IImageDataset
{
    private readonly int[] _indices;

    /// <summary>Creates the view; the indices are copied and checked.</summary>
    public DatasetSubset(IImageDataset source, IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(indices);
        _indices = indices.ToArray();
        foreach (int i in _indices)
            if ((uint)i >= (uint)source.Count)
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"Index outside 0..{source.Count - 1}.");
        Source = source;
    }

    /// <summary>The underlying dataset.</summary>
    public IImageDataset Source { get; }

    /// <summary>Index into <see cref="Source"/> of item <paramref name="index"/>.</summary>
    public int SourceIndex(int index) => _indices[index];

    /// <inheritdoc/>
    public DatasetKind Kind => Source.Kind;

    /// <inheritdoc/>
    public int Count => _indices.Length;

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => Source.ClassNames;

    /// <inheritdoc/>
    public ImageSample Get(int index) => Source.Get(_indices[index]);
}
