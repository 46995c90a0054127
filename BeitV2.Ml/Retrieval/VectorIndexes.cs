namespace BeitV2.Ml.Retrieval;

/// <summary>The one place that decides which index a collection gets, and reads one back from its file.</summary>
public static class VectorIndexes
{
    /// <summary>A new, empty index for vectors of <paramref name="dimensions"/>.</summary>
    /// <param name="expectedCount">how many vectors it will hold (approximate search pays off only for many).</param>
    public static IVectorIndex Create(int dimensions, long expectedCount, VectorQuantization quantization = VectorQuantization.Float32) =>
        new ExactVectorIndex(dimensions);

    /// <summary>Reads an index written by <see cref="IVectorIndex.Save"/>.</summary>
    public static IVectorIndex Load(string path) => ExactVectorIndex.Load(path);
}
