using BeitV2.Ml.Retrieval;

namespace BeitV2.Ml.Tests.Retrieval;

public sealed class ExactVectorIndexTests
{
    [Fact]
    public void Search_RanksByCosine_BestFirst_AndIgnoresLength()
    {
        using var index = new ExactVectorIndex(2);
        index.Add([10, 11, 12], [1, 0, /**/ 0, 5, /**/ 3, 3]);
        var hits = index.Search([2, 0.1f], 3);
        Assert.Equal([10L, 12L, 11L], hits.Select(h => h.Key));
        Assert.Equal(MathF.Cos(MathF.Atan2(0.1f, 2)), hits[0].Score, 5);
        Assert.Equal(2, index.Search([0, 1], 2).Count);
        using var empty = new ExactVectorIndex(2);
        Assert.Empty(empty.Search([1, 1], 5));
    }

    [Fact]
    public void ADuplicateKey_OrAWrongLength_IsRefused_AndChangesNothing()
    {
        using var index = new ExactVectorIndex(3);
        index.Add([1], [1, 2, 3]);
        Assert.Throws<ArgumentException>(() => index.Add([2, 1], [1, 1, 1, 2, 2, 2]));
        Assert.Throws<ArgumentException>(() => index.Add([3], [1, 2]));
        Assert.Equal(1, index.Count);
        Assert.Throws<ArgumentException>(() => index.Search([1, 2], 1));
    }

    [Fact]
    public void SaveAndLoad_GiveTheSameAnswers_AndADamagedFileIsRefused()
    {
        using var dir = new TempDirectory();
        var random = new Random(3);
        var vectors = Enumerable.Range(0, 200 * 16).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        using var index = new ExactVectorIndex(16);
        index.Add(Enumerable.Range(0, 200).Select(i => (long)i * 7).ToArray(), vectors);
        var path = Path.Combine(dir.Path, "index.bin");
        index.Save(path);
        using var loaded = VectorIndexes.Load(path);
        var query = vectors.AsSpan(5 * 16, 16).ToArray();
        Assert.Equal(index.Search(query, 10), loaded.Search(query, 10));
        Assert.Equal(35L, loaded.Search(query, 1)[0].Key);
        Assert.Single(Directory.GetFiles(dir.Path));   // no temporary file left behind

        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^5]);
        Assert.Throws<InvalidDataException>(() => VectorIndexes.Load(path));
    }
}
