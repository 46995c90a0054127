using System.Numerics.Tensors;

namespace BeitV2.Ml.Retrieval;

/// <summary>
/// Brute-force cosine search over float32 vectors held in memory: exact, the reference the approximate index's recall
/// is measured against, and the index of small collections (a scan of a few thousand vectors costs less than a graph).
/// </summary>
public sealed class ExactVectorIndex : IVectorIndex
{
    private const int Magic = 0x58454256;   // "VBEX"
    private readonly Lock gate = new();
    private readonly List<long> keys = [];
    private readonly HashSet<long> present = [];
    private float[] vectors = [];

    public ExactVectorIndex(int dimensions)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        Dimensions = dimensions;
    }

    public int Dimensions { get; }
    public VectorQuantization Quantization => VectorQuantization.Float32;

    public long Count
    {
        get { lock (gate) return keys.Count; }
    }

    public void Add(ReadOnlySpan<long> newKeys, ReadOnlySpan<float> newVectors) => Add(newKeys, newVectors, normalise: true);

    private void Add(ReadOnlySpan<long> newKeys, ReadOnlySpan<float> newVectors, bool normalise)
    {
        if (newVectors.Length != newKeys.Length * Dimensions)
            throw new ArgumentException($"{newKeys.Length} keys need {newKeys.Length * Dimensions} floats, not {newVectors.Length}.", nameof(newVectors));
        lock (gate)
        {
            foreach (var key in newKeys)
                if (present.Contains(key)) throw new ArgumentException($"Key {key} is already in the index.", nameof(newKeys));
            var start = keys.Count * Dimensions;
            if (vectors.Length < start + newVectors.Length)
                Array.Resize(ref vectors, Math.Max(start + newVectors.Length, vectors.Length * 2));
            for (var i = 0; i < newKeys.Length; i++)
            {
                var target = vectors.AsSpan(start + i * Dimensions, Dimensions);
                newVectors.Slice(i * Dimensions, Dimensions).CopyTo(target);
                if (normalise) Normalise(target);
                keys.Add(newKeys[i]);
                present.Add(newKeys[i]);
            }
        }
    }

    public IReadOnlyList<VectorHit> Search(ReadOnlySpan<float> query, int k)
    {
        if (query.Length != Dimensions) throw new ArgumentException($"A query of {query.Length} floats for an index of {Dimensions}.", nameof(query));
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        Span<float> q = query.Length <= 4096 ? stackalloc float[query.Length] : new float[query.Length];
        query.CopyTo(q);
        Normalise(q);
        lock (gate)
        {
            var best = new PriorityQueue<VectorHit, float>(k + 1);   // min-heap on score: the worst kept hit on top
            for (var i = 0; i < keys.Count; i++)
            {
                var score = TensorPrimitives.Dot(vectors.AsSpan(i * Dimensions, Dimensions), q);
                if (best.Count < k) best.Enqueue(new VectorHit(keys[i], score), score);
                else if (score > best.Peek().Score) best.EnqueueDequeue(new VectorHit(keys[i], score), score);
            }
            var result = new VectorHit[best.Count];
            for (var i = result.Length - 1; i >= 0; i--) result[i] = best.Dequeue();
            return result;
        }
    }

    public void Save(string path)
    {
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        lock (gate)
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            using (var writer = new BinaryWriter(stream))
            {
                writer.Write(Magic);
                writer.Write(Dimensions);
                writer.Write(keys.Count);
                foreach (var key in keys) writer.Write(key);
                writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vectors.AsSpan(0, keys.Count * Dimensions)));
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
        }
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// A copy of every key and its (l2-normalised) vector, in insertion order: what <see cref="VectorIndexes.ToHnsw"/>
    /// builds the approximate index of a collection that outgrew exact search from.
    /// </summary>
    public (long[] Keys, float[] Vectors) Export()
    {
        lock (gate) return (keys.ToArray(), vectors.AsSpan(0, keys.Count * Dimensions).ToArray());
    }

    /// <summary>True when <paramref name="path"/> starts with this class's magic (used to tell index files apart).</summary>
    public static bool IsExactFile(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        return stream.Length >= 4 && stream.Read(head) == 4 && BitConverter.ToInt32(head) == Magic;
    }

    /// <summary>Nothing native to free: the vectors are managed memory.</summary>
    public void Dispose() { }

    /// <summary>Reads an index <see cref="Save"/> wrote; <see cref="InvalidDataException"/> for anything else.</summary>
    public static ExactVectorIndex Load(string path)
    {
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream);
        if (stream.Length < 12 || reader.ReadInt32() != Magic) throw new InvalidDataException("Not an exact vector index file.");
        var dimensions = reader.ReadInt32();
        var count = reader.ReadInt32();
        if (dimensions < 1 || count < 0 || 12L + count * (8L + 4L * dimensions) != stream.Length)
            throw new InvalidDataException("The vector index file is truncated or damaged.");
        var index = new ExactVectorIndex(dimensions);
        var keys = new long[count];
        for (var i = 0; i < count; i++) keys[i] = reader.ReadInt64();
        var vectors = new float[count * dimensions];
        reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vectors.AsSpan()));
        index.Add(keys, vectors, normalise: false);   // stored normalised: a second pass would move the last bits
        return index;
    }

    private static void Normalise(Span<float> v)
    {
        var norm = TensorPrimitives.Norm(v);
        if (norm > 0) TensorPrimitives.Divide(v, norm, v);
    }
}
