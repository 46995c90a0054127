namespace BeitV2.Ml.Retrieval;

/// <summary>One answer of a nearest-neighbour search: the item's key and its cosine similarity to the query.</summary>
public readonly record struct VectorHit(long Key, float Score);

/// <summary>
/// A set of vectors searched by cosine similarity (vectors are l2-normalised when added, queries when searched).
/// Implementations: <see cref="ExactVectorIndex"/> (brute force, exact) and an approximate one for large collections
/// (<see cref="VectorIndexes"/> picks). Adds and searches may run on different threads; a search sees every add that
/// returned before it started.
/// </summary>
public interface IVectorIndex : IDisposable
{
    /// <summary>Length of every vector.</summary>
    int Dimensions { get; }
    /// <summary>How the vectors are stored.</summary>
    VectorQuantization Quantization { get; }
    /// <summary>Vectors held.</summary>
    long Count { get; }
    /// <summary>Adds vectors (row-major, <c>keys.Length × Dimensions</c> floats); a key already present is an error.</summary>
    void Add(ReadOnlySpan<long> keys, ReadOnlySpan<float> vectors);
    /// <summary>The <paramref name="k"/> vectors most similar to <paramref name="query"/>, best first (fewer when the index holds fewer).</summary>
    IReadOnlyList<VectorHit> Search(ReadOnlySpan<float> query, int k);
    /// <summary>Writes the index to <paramref name="path"/> atomically (a temporary file renamed into place).</summary>
    void Save(string path);
}

/// <summary>How an index stores its vectors: float32 (exact scores) or int8 (4× smaller; recall measured by the bench).</summary>
public enum VectorQuantization
{
    Float32,
    Int8,
}
