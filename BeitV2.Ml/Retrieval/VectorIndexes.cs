namespace BeitV2.Ml.Retrieval;

/// <summary>
/// The one place that decides which index a collection gets, and reads one back from its file.
/// <para>
/// Life of a collection's index, for the store: <see cref="Create"/> when it is made (exact below
/// <see cref="HnswThreshold"/> vectors, HNSW from there); <see cref="Load"/> (writable) to add items, then
/// <see cref="IVectorIndex.Save"/>; before adding, <see cref="NeedsUpgrade"/> says whether the collection is about to
/// outgrow exact search, and <see cref="ToHnsw"/> builds its replacement (save it over the old file, dispose the old
/// one); <see cref="OpenForSearch"/> on servers that only search (memory-maps HNSW files). <see cref="Kind"/> names an
/// index for the API.
/// </para>
/// </summary>
public static class VectorIndexes
{
    /// <summary>
    /// Vectors from which a collection gets an HNSW graph instead of a brute-force scan. Measured on this project's
    /// 2-core machine at 20,000 vectors: the exact scan takes ~1 ms a query at 64-d and ~3 ms at 768-d (one thread),
    /// HNSW ~0.2 ms at either with recall@10 0.98 (random 64-d) and 0.9995 (clustered 768-d), but builds at only a few
    /// thousand vectors a second. Below this the scan costs little and is exact, and a collection's first images are
    /// indexed as fast as they are embedded. (On uniformly random 768-d data HNSW gains nothing at this size: 3.4 ms and
    /// recall 0.53; such data is no embedding's.)
    /// </summary>
    public const long HnswThreshold = 20_000;

    /// <summary>A new, empty index for vectors of <paramref name="dimensions"/>.</summary>
    /// <param name="expectedCount">how many vectors it will hold (approximate search pays off only for many).</param>
    /// <param name="quantization">int8 storage exists only in the HNSW index, so asking for it gives HNSW at any size.</param>
    public static IVectorIndex Create(int dimensions, long expectedCount, VectorQuantization quantization = VectorQuantization.Float32) =>
        expectedCount < HnswThreshold && quantization == VectorQuantization.Float32
            ? new ExactVectorIndex(dimensions)
            : HnswVectorIndex.Create(dimensions, quantization, expectedCount: expectedCount);

    /// <summary>Reads an index written by <see cref="IVectorIndex.Save"/> into memory, writable.</summary>
    /// <exception cref="InvalidDataException">the file is neither kind, or is truncated or damaged.</exception>
    public static IVectorIndex Load(string path) => Open(path, view: false);

    /// <summary>
    /// Opens an index for searching only: an HNSW file is memory-mapped read-only (<see cref="HnswVectorIndex.View"/>:
    /// nothing read into memory up front, adds refused); an exact one is loaded (it is small by construction).
    /// </summary>
    /// <exception cref="InvalidDataException">the file is neither kind, or is truncated or damaged.</exception>
    public static IVectorIndex OpenForSearch(string path) => Open(path, view: true);

    /// <summary>
    /// True when <paramref name="index"/> is an exact index that would reach <see cref="HnswThreshold"/> vectors after
    /// <paramref name="adding"/> more: the store should then replace it with <see cref="ToHnsw"/> before adding.
    /// </summary>
    public static bool NeedsUpgrade(IVectorIndex index, long adding) =>
        index is ExactVectorIndex && index.Count + adding >= HnswThreshold;

    /// <summary>
    /// A new HNSW index holding every vector of <paramref name="exact"/> under the same keys (the exact index is left
    /// as it is: the caller saves the new one over its file, then disposes the old). Room is made for
    /// <paramref name="expectedCount"/> vectors when that is more than the exact index holds.
    /// </summary>
    public static HnswVectorIndex ToHnsw(ExactVectorIndex exact, VectorQuantization quantization = VectorQuantization.Float32, long expectedCount = 0)
    {
        var (keys, vectors) = exact.Export();
        var hnsw = HnswVectorIndex.Create(exact.Dimensions, quantization, expectedCount: Math.Max(expectedCount, keys.Length));
        try
        {
            hnsw.Add(keys, vectors);
            return hnsw;
        }
        catch
        {
            hnsw.Dispose();
            throw;
        }
    }

    /// <summary>"exact" or "hnsw": the <c>index.kind</c> of a collection in the API.</summary>
    public static string Kind(IVectorIndex index) => index switch
    {
        ExactVectorIndex => "exact",
        HnswVectorIndex => "hnsw",
        _ => throw new ArgumentException($"Unknown index type {index.GetType().Name}.", nameof(index)),
    };

    private static IVectorIndex Open(string path, bool view)
    {
        if (ExactVectorIndex.IsExactFile(path)) return ExactVectorIndex.Load(path);
        if (HnswVectorIndex.IsHnswFile(path)) return view ? HnswVectorIndex.View(path) : HnswVectorIndex.Load(path);
        throw new InvalidDataException("Not a vector index file.");
    }
}
