using BeitV2.Ml.Retrieval;
using Xunit.Abstractions;

namespace BeitV2.Ml.Tests.Retrieval;

public sealed class HnswVectorIndexTests(ITestOutputHelper output)
{
    private const int Dim = 64;

    /// <summary>Uniform random vectors in [-0.5, 0.5)^d: neighbours are barely closer than strangers, the hard case.</summary>
    private static float[] RandomVectors(int count, int seed, int dim = Dim)
    {
        var random = new Random(seed);
        var v = new float[count * dim];
        for (var i = 0; i < v.Length; i++) v[i] = random.NextSingle() - 0.5f;
        return v;
    }

    /// <summary>
    /// Embedding-like data: 50 clusters around random centres, each spread along 8 directions of its own (gaussian, 0.15)
    /// plus a little isotropic noise (0.02): many points per cluster and a low intrinsic dimension, as real embeddings have.
    /// </summary>
    private static float[] ClusteredVectors(int count, int seed, int dim = Dim)
    {
        const int clusters = 50, spread = 8;
        var shapes = new Random(1234);   // the same clusters for every seed: queries come from the indexed distribution
        var centres = new float[clusters * dim];
        var directions = new float[clusters * spread * dim];
        for (var i = 0; i < centres.Length; i++) centres[i] = shapes.NextSingle() - 0.5f;
        for (var i = 0; i < directions.Length; i++) directions[i] = Gaussian(shapes) / MathF.Sqrt(dim);
        var random = new Random(seed);
        var v = new float[count * dim];
        for (var i = 0; i < count; i++)
        {
            var c = random.Next(clusters);
            var row = v.AsSpan(i * dim, dim);
            centres.AsSpan(c * dim, dim).CopyTo(row);
            for (var d = 0; d < spread; d++)
            {
                var weight = 0.15f * Gaussian(random);
                var direction = directions.AsSpan((c * spread + d) * dim, dim);
                for (var j = 0; j < dim; j++) row[j] += weight * direction[j];
            }
            for (var j = 0; j < dim; j++) row[j] += 0.02f * Gaussian(random);
        }
        return v;
    }

    private static float Gaussian(Random random) =>
        MathF.Sqrt(-2f * MathF.Log(1f - random.NextSingle())) * MathF.Cos(2f * MathF.PI * random.NextSingle());

    private static long[] Keys(int count, long offset = 0) => Enumerable.Range(0, count).Select(i => offset + i * 3L).ToArray();

    private static double RecallAt10(IVectorIndex approximate, IVectorIndex exact, float[] queries)
    {
        var found = 0;
        var queryCount = queries.Length / Dim;
        for (var q = 0; q < queryCount; q++)
        {
            var query = queries.AsSpan(q * Dim, Dim);
            var truth = exact.Search(query, 10).Select(h => h.Key).ToHashSet();
            found += approximate.Search(query, 10).Count(h => truth.Contains(h.Key));
        }
        return found / (10.0 * queryCount);
    }

    // Floors: float32 is held to the issue's 0.95. int8's floor sits under what was measured here (the data is seeded,
    // but the graph is built on several threads, so recall moves by ~0.005 between runs): random 64-d f32 0.979 /
    // i8 0.93, clustered f32 1.000 / i8 0.916. int8 loses most of its recall to quantisation itself: 64 components of
    // a unit vector scaled to [-127, 127] keep about 4 bits each, so near-ties among neighbours reorder.
    [Theory]
    [InlineData(VectorQuantization.Float32, false, 0.95)]
    [InlineData(VectorQuantization.Float32, true, 0.95)]
    [InlineData(VectorQuantization.Int8, false, 0.88)]
    [InlineData(VectorQuantization.Int8, true, 0.88)]
    public void Recall_At10_AgainstExactSearch_MeetsItsFloor(VectorQuantization quantization, bool clustered, double floor)
    {
        const int n = 20_000;
        var vectors = clustered ? ClusteredVectors(n, 11) : RandomVectors(n, 11);
        var queries = clustered ? ClusteredVectors(200, 99) : RandomVectors(200, 99);
        var keys = Keys(n);
        using var exact = new ExactVectorIndex(Dim);
        exact.Add(keys, vectors);
        using var hnsw = HnswVectorIndex.Create(Dim, quantization, expectedCount: n);
        hnsw.Add(keys, vectors);
        Assert.Equal(n, hnsw.Count);
        Assert.Equal(quantization, hnsw.Quantization);

        var recall = RecallAt10(hnsw, exact, queries);
        output.WriteLine($"{quantization} {(clustered ? "clustered" : "random")} 64-d, {n} vectors: recall@10 = {recall:F4}");
        Assert.True(recall >= floor, $"recall@10 {recall:F4} < {floor}");
    }

    [Fact]
    public void Search_ReturnsCosineScores_BestFirst_LikeTheExactIndex()
    {
        using var index = HnswVectorIndex.Create(2);
        index.Add([10, 11, 12], [1, 0, /**/ 0, 5, /**/ 3, 3]);
        var hits = index.Search([2, 0.1f], 3);
        Assert.Equal([10L, 12L, 11L], hits.Select(h => h.Key));
        Assert.Equal(MathF.Cos(MathF.Atan2(0.1f, 2)), hits[0].Score, 5);
        Assert.Equal(2, index.Search([0, 1], 2).Count);
        using var empty = HnswVectorIndex.Create(2);
        Assert.Empty(empty.Search([1, 1], 5));

        var vectors = RandomVectors(500, 5);
        using var exact = new ExactVectorIndex(Dim);
        using var hnsw = HnswVectorIndex.Create(Dim);
        exact.Add(Keys(500), vectors);
        hnsw.Add(Keys(500), vectors);
        var query = RandomVectors(1, 6);
        var expected = exact.Search(query, 5);
        var actual = hnsw.Search(query, 5);
        Assert.Equal(expected.Select(h => h.Key), actual.Select(h => h.Key));
        for (var i = 0; i < 5; i++) Assert.Equal(expected[i].Score, actual[i].Score, 4);
    }

    [Fact]
    public void ADuplicateKey_OrAWrongLength_IsRefused_AndChangesNothing()
    {
        using var index = HnswVectorIndex.Create(3);
        index.Add([1], [1, 2, 3]);
        Assert.Throws<ArgumentException>(() => index.Add([2, 1], [1, 1, 1, 2, 2, 2]));
        Assert.Throws<ArgumentException>(() => index.Add([4, 4], [1, 1, 1, 2, 2, 2]));
        Assert.Throws<ArgumentException>(() => index.Add([3], [1, 2]));
        Assert.Equal(1, index.Count);
        Assert.Throws<ArgumentException>(() => index.Search([1, 2], 1));
    }

    [Theory]
    [InlineData(VectorQuantization.Float32)]
    [InlineData(VectorQuantization.Int8)]
    public void SaveLoadAndView_GiveTheSameAnswers_LoadStaysWritable_ViewIsReadOnly(VectorQuantization quantization)
    {
        using var dir = new TempDirectory();
        var vectors = ClusteredVectors(3000, 21);
        using var index = HnswVectorIndex.Create(Dim, quantization);
        index.Add(Keys(3000), vectors);
        var path = Path.Combine(dir.Path, "index.bin");
        index.Save(path);
        Assert.Single(Directory.GetFiles(dir.Path));   // no temporary file left behind

        using var loaded = (HnswVectorIndex)VectorIndexes.Load(path);
        using var viewed = (HnswVectorIndex)VectorIndexes.OpenForSearch(path);
        Assert.False(loaded.IsReadOnly);
        Assert.True(viewed.IsReadOnly);
        foreach (var opened in new[] { loaded, viewed })
        {
            Assert.Equal(quantization, opened.Quantization);
            Assert.Equal(Dim, opened.Dimensions);
            Assert.Equal(3000, opened.Count);
        }
        var queries = ClusteredVectors(20, 22);
        for (var q = 0; q < 20; q++)
        {
            var query = queries.AsSpan(q * Dim, Dim);
            var expected = index.Search(query, 10);
            Assert.Equal(expected, loaded.Search(query, 10));
            Assert.Equal(expected, viewed.Search(query, 10));
        }

        Assert.Throws<InvalidOperationException>(() => viewed.Add([1], vectors.AsSpan(0, Dim)));
        var more = RandomVectors(10, 23);
        loaded.Add(Keys(10, offset: 1_000_000), more);
        Assert.Equal(1_000_000L, loaded.Search(more.AsSpan(0, Dim), 1)[0].Key);
        loaded.Save(path);   // renamed over the file the view maps: the view keeps answering from the old one
        Assert.Equal(3000, viewed.Count);
        Assert.Equal(index.Search(queries.AsSpan(0, Dim), 10), viewed.Search(queries.AsSpan(0, Dim), 10));
        using var reloaded = VectorIndexes.Load(path);
        Assert.Equal(3010, reloaded.Count);
    }

    [Fact]
    public void ADamagedOrForeignFile_IsRefused()
    {
        using var dir = new TempDirectory();
        using var index = HnswVectorIndex.Create(Dim);
        index.Add(Keys(500), RandomVectors(500, 31));
        var path = Path.Combine(dir.Path, "index.bin");
        index.Save(path);
        var bytes = File.ReadAllBytes(path);
        var damaged = Path.Combine(dir.Path, "damaged.bin");

        File.WriteAllBytes(damaged, bytes[..^5]);   // truncated: trailer gone
        Assert.Throws<InvalidDataException>(() => VectorIndexes.Load(damaged));
        File.WriteAllBytes(damaged, [.. bytes[..1000], .. bytes[2000..]]);   // bytes missing in the middle, trailer intact
        Assert.Throws<InvalidDataException>(() => VectorIndexes.Load(damaged));
        Assert.Throws<InvalidDataException>(() => VectorIndexes.OpenForSearch(damaged));
        var flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 0x40;   // one flipped bit in the graph
        File.WriteAllBytes(damaged, flipped);
        Assert.Throws<InvalidDataException>(() => VectorIndexes.Load(damaged));
        Assert.Throws<InvalidDataException>(() => VectorIndexes.OpenForSearch(damaged));
        File.WriteAllText(damaged, "not an index at all, just some text");
        Assert.Throws<InvalidDataException>(() => VectorIndexes.Load(damaged));
        File.WriteAllBytes(damaged, []);
        Assert.Throws<InvalidDataException>(() => VectorIndexes.Load(damaged));

        using var intact = VectorIndexes.Load(path);   // the original still loads
        Assert.Equal(500, intact.Count);
    }

    [Fact]
    public void ConcurrentSearches_DuringAdds_NeitherCrashNorReturnTornResults()
    {
        const int batches = 40, batch = 100;
        var all = ClusteredVectors(batches * batch, 41);
        using var index = HnswVectorIndex.Create(Dim);
        index.Add(Keys(batch), all.AsSpan(0, batch * Dim));
        var queries = ClusteredVectors(50, 42);
        var searchers = Math.Max(8, index.Threads * 3);   // more searching threads than USearch has contexts
        using var stop = new CancellationTokenSource();
        var problems = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var searchCount = 0;
        var tasks = Enumerable.Range(0, searchers).Select(t => Task.Factory.StartNew(() =>
        {
            var q = t;
            while (!stop.IsCancellationRequested || Volatile.Read(ref searchCount) < searchers * 5)
            {
                var query = queries.AsSpan(q++ % 50 * Dim, Dim);
                var hits = index.Search(query, 10);
                Interlocked.Increment(ref searchCount);
                if (hits.Count != 10) problems.Enqueue($"{hits.Count} hits");
                if (hits.Select(h => h.Key).Distinct().Count() != hits.Count) problems.Enqueue("duplicate keys");
                for (var i = 0; i < hits.Count; i++)
                {
                    var key = hits[i].Key;
                    if (key % 3 != 0 || key / 3 >= batches * batch) { problems.Enqueue($"unknown key {key}"); continue; }
                    // A torn vector would score differently from the one that was added under its key.
                    var stored = all.AsSpan((int)(key / 3) * Dim, Dim);
                    var cosine = System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(stored, query);
                    if (MathF.Abs(cosine - hits[i].Score) > 1e-4f) problems.Enqueue($"score {hits[i].Score} for key {key}, cosine {cosine}");
                    if (i > 0 && hits[i].Score > hits[i - 1].Score + 1e-6f) problems.Enqueue("not best first");
                }
            }
        }, TaskCreationOptions.LongRunning)).ToArray();

        for (var b = 1; b < batches; b++)
        {
            var keys = Enumerable.Range(b * batch, batch).Select(i => i * 3L).ToArray();
            index.Add(keys, all.AsSpan(b * batch * Dim, batch * Dim));
            // Every add that returned is visible to the next search.
            Assert.Equal(keys[0], index.Search(all.AsSpan(b * batch * Dim, Dim), 1)[0].Key);
        }
        stop.Cancel();
        Task.WaitAll(tasks);
        Assert.Empty(problems);
        Assert.Equal(batches * batch, index.Count);
        output.WriteLine($"{searchCount} searches on {searchers} threads during {batches} adds ({index.Threads} USearch contexts)");
    }

    [Fact]
    public void Dispose_FreesTheIndex_AndLaterCallsSaySo()
    {
        var index = HnswVectorIndex.Create(Dim, expectedCount: 1000);
        index.Add(Keys(1000), RandomVectors(1000, 51));
        Assert.True(index.MemoryBytes > 1000 * Dim * 4);
        index.Dispose();
        index.Dispose();   // twice is harmless
        Assert.Throws<ObjectDisposedException>(() => index.Search(new float[Dim], 1));
        Assert.Throws<ObjectDisposedException>(() => index.Count);
        Assert.Throws<ObjectDisposedException>(() => index.Add([5000], new float[Dim]));
    }

    [Fact]
    public void VectorIndexes_PicksExactBelowTheThreshold_HnswAbove_AndUpgradesAGrowingCollection()
    {
        using (var small = VectorIndexes.Create(Dim, VectorIndexes.HnswThreshold - 1)) Assert.Equal("exact", VectorIndexes.Kind(small));
        using (var large = VectorIndexes.Create(Dim, VectorIndexes.HnswThreshold)) Assert.Equal("hnsw", VectorIndexes.Kind(large));
        using (var int8 = VectorIndexes.Create(Dim, 10, VectorQuantization.Int8))
        {
            Assert.Equal("hnsw", VectorIndexes.Kind(int8));
            Assert.Equal(VectorQuantization.Int8, int8.Quantization);
        }

        using var exact = new ExactVectorIndex(Dim);
        var vectors = ClusteredVectors(2000, 61);
        exact.Add(Keys(2000), vectors);
        Assert.False(VectorIndexes.NeedsUpgrade(exact, 10));
        Assert.True(VectorIndexes.NeedsUpgrade(exact, VectorIndexes.HnswThreshold - 2000));
        using var hnsw = VectorIndexes.ToHnsw(exact);
        Assert.False(VectorIndexes.NeedsUpgrade(hnsw, 1_000_000));
        Assert.Equal(2000, hnsw.Count);
        for (var i = 0; i < 2000; i += 97)
            Assert.Equal(exact.Search(vectors.AsSpan(i * Dim, Dim), 1)[0].Key, hnsw.Search(vectors.AsSpan(i * Dim, Dim), 1)[0].Key);

        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "index.bin");
        exact.Save(path);
        Assert.IsType<ExactVectorIndex>(VectorIndexes.OpenForSearch(path));
        hnsw.Save(path);
        Assert.IsType<HnswVectorIndex>(VectorIndexes.Load(path));
    }
}
