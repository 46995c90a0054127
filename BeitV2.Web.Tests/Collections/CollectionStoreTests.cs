using BeitV2.Web.Collections;

namespace BeitV2.Web.Tests.Collections;

/// <summary>
/// The collection files without a server: commits through <c>current.json</c>, generations of the index, several store
/// instances (as on several servers) on one folder, and what a crashed writer leaves.
/// </summary>
public sealed class CollectionStoreTests
{
    private const int Dim = 8;

    private static CollectionRecord NewRecord(CollectionStore store) => store.Create(new CollectionRecord
    {
        Id = store.NewId("torn test"), Name = "torn test", Dataset = "none", EmbeddingModel = "none", Pooling = "cls", Dim = Dim,
        Status = CollectionStatus.Ready, CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
    });

    /// <summary>Item i's vector: far from every other item's (a one-hot-ish direction plus a small per-item twist).</summary>
    private static float[] VectorOf(long item)
    {
        var rng = new Random((int)item + 1);
        var v = new float[Dim];
        for (var d = 0; d < Dim; d++) v[d] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }

    private static (List<CollectionItem> Items, float[] Vectors) Batch(long first, int count)
    {
        var items = Enumerable.Range(0, count).Select(i => new CollectionItem { Width = 1, Height = 1, FileName = $"{first + i}.png" }).ToList();
        var vectors = Enumerable.Range(0, count).SelectMany(i => VectorOf(first + i)).ToArray();
        return (items, vectors);
    }

    [Fact]
    public async Task A_reader_on_another_store_never_sees_a_torn_index_while_a_writer_adds_items()
    {
        using var dir = new TempDirectory();
        var writer = new CollectionStore(dir.Path);
        var reader = new CollectionStore(dir.Path);   // another server's view of the same folder
        var record = NewRecord(writer);
        const int Commits = 40, PerCommit = 7;
        var done = false;
        var writing = Task.Run(() =>
        {
            try
            {
                for (var c = 0; c < Commits; c++)
                {
                    var (items, vectors) = Batch((long)c * PerCommit, PerCommit);
                    var (first, state) = writer.Add(record.Id, Dim, items, vectors, []);
                    Assert.Equal((long)c * PerCommit, first);
                    Assert.Equal(first + PerCommit, state.Items);
                }
            }
            finally
            {
                Volatile.Write(ref done, true);
            }
        });
        var reads = 0;
        var seen = new HashSet<long>();
        while (!Volatile.Read(ref done) || reads == 0)
        {
            using var lease = reader.Index(record.Id);
            var (index, state) = (lease.Index, lease.State);
            if (index is null) continue;
            reads++;
            seen.Add(state.Items);
            // What the state names is whole: the index holds exactly its items, each item is found as itself, the items file has them all.
            Assert.Equal(state.IndexItems, index.Count);
            Assert.Equal(state.Items, state.IndexItems);
            Assert.Equal(state.Items, reader.Items(record.Id, state).Count);
            var probe = state.Items - 1 - reads % state.Items;
            Assert.Equal(VectorOf(probe), reader.Vectors(record.Id, Dim, probe, 1));
            var best = index.Search(VectorOf(probe), 1).Single();
            Assert.Equal(probe, best.Key);
            Assert.Equal(1.0, best.Score, 4);
        }
        await writing;
        using var finalLease = reader.Index(record.Id);
        Assert.Equal(Commits * PerCommit, finalLease.State.Items);
        Assert.Equal(Commits * PerCommit, finalLease.Index!.Count);
        Assert.True(reads > 0);
    }

    [Fact]
    public void A_replaced_index_stays_usable_while_a_search_holds_it_and_is_freed_when_the_last_one_lets_go()
    {
        using var dir = new TempDirectory();
        var store = new CollectionStore(dir.Path);
        var record = NewRecord(store);
        var (items, vectors) = Batch(0, 30);
        store.Add(record.Id, Dim, items, vectors, [], quantization: BeitV2.Ml.Retrieval.VectorQuantization.Int8);   // an HNSW file at any size
        var old = store.Index(record.Id);
        var oldIndex = old.Index!;
        (items, vectors) = Batch(30, 10);
        store.Add(record.Id, Dim, items, vectors, [], quantization: BeitV2.Ml.Retrieval.VectorQuantization.Int8);
        using (var current = store.Index(record.Id))
        {
            Assert.NotSame(oldIndex, current.Index);
            Assert.Equal(40, current.Index!.Count);
            Assert.Equal(5, oldIndex.Search(VectorOf(5), 1)[0].Key);   // the held, replaced index still answers
        }
        old.Dispose();
        Assert.Throws<ObjectDisposedException>(() => oldIndex.Search(VectorOf(5), 1));
        using var again = store.Index(record.Id);
        Assert.Equal(5, again.Index!.Search(VectorOf(5), 1)[0].Key);   // the current one was not freed with it
    }

    [Fact]
    public void What_a_crashed_writer_appended_after_the_last_commit_is_cut_off_and_never_becomes_an_item()
    {
        using var dir = new TempDirectory();
        var store = new CollectionStore(dir.Path);
        var record = NewRecord(store);
        var (items, vectors) = Batch(0, 3);
        store.Add(record.Id, Dim, items, vectors, []);
        var folder = store.CollectionDirectory(record.Id);
        // A writer that appended two items and died before committing them.
        File.AppendAllText(Path.Combine(folder, CollectionFiles.Items), "{\"l\":-1,\"w\":1,\"h\":1,\"d\":-1,\"f\":\"ghost.png\"}\n{\"l\":-1,");
        File.AppendAllBytes(Path.Combine(folder, CollectionFiles.Embeddings), new byte[Dim * 4 + 5]);

        var state = store.State(record.Id);
        Assert.Equal(3, state.Items);
        Assert.Equal(3, new CollectionStore(dir.Path).Items(record.Id, state).Count);

        var (more, moreVectors) = Batch(3, 2);
        var (first, after) = store.Add(record.Id, Dim, more, moreVectors, []);
        Assert.Equal(3, first);
        Assert.Equal(5, after.Items);
        var read = new CollectionStore(dir.Path).Items(record.Id, after);
        Assert.Equal(["0.png", "1.png", "2.png", "3.png", "4.png"], read.Select(i => i.FileName));
        Assert.Equal(5L * Dim * 4, new FileInfo(Path.Combine(folder, CollectionFiles.Embeddings)).Length);
        Assert.Equal(VectorOf(4), store.Vectors(record.Id, Dim, 4, 1));
    }

    [Fact]
    public void Replaced_index_generations_stay_for_the_grace_period_then_go()
    {
        using var dir = new TempDirectory();
        var patient = new CollectionStore(dir.Path);
        var record = NewRecord(patient);
        var folder = patient.CollectionDirectory(record.Id);
        for (var c = 0; c < 3; c++)
        {
            var (items, vectors) = Batch(c, 1);
            patient.Add(record.Id, Dim, items, vectors, []);
        }
        Assert.Equal(3, Directory.GetFiles(folder, "index-*.bin").Length);   // replaced a moment ago: kept for readers

        var hasty = new CollectionStore(dir.Path) { Grace = TimeSpan.Zero };
        var (more, moreVectors) = Batch(3, 1);
        var (_, state) = hasty.Add(record.Id, Dim, more, moreVectors, []);
        Assert.Equal([state.IndexFile], Directory.GetFiles(folder, "index-*.bin").Select(Path.GetFileName));
    }

    [Fact]
    public void Deleting_removes_the_folder()
    {
        using var dir = new TempDirectory();
        var store = new CollectionStore(dir.Path);
        var record = NewRecord(store);
        var (items, vectors) = Batch(0, 2);
        store.Add(record.Id, Dim, items, vectors, []);
        store.Delete(record.Id);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
        Assert.Null(store.Find(record.Id));
    }
}
