using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using BeitV2.Ml.Retrieval;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;

namespace BeitV2.Web.Collections;

/// <summary>
/// One folder per collection under <c>{data}/collections/{id}/</c>: <c>collection.json</c> (its description),
/// <c>current.json</c> (what it holds: <see cref="CollectionState"/>), the append-only <c>items.jsonl</c>,
/// <c>embeddings.f32</c> and <c>tokens.u16</c> (<see cref="CollectionFiles"/>), the vector index <c>index-{gen}.bin</c>,
/// the inverted index <c>postings-{gen}.bin</c> and <c>uploads/</c> (small copies of uploaded images).
/// </summary>
/// <remarks>
/// Several servers may share the data directory. Writers serialise on <see cref="CollectionLock"/> and commit by replacing
/// <c>current.json</c> atomically; readers take no lock: they read <c>current.json</c>, then only what it names. An index or
/// postings file is never rewritten: a change writes the next generation, and the ones it replaced are removed once
/// they have been replaced for <see cref="Grace"/> (a reader that read the older <c>current.json</c> a moment ago still
/// finds its files; one that is later than that reads <c>current.json</c> again). Each server keeps the index it loaded
/// and loads the new file when <c>current.json</c> names another one, before the search that notices.
/// Needs no model registry: the files are the truth.
/// </remarks>
public sealed partial class CollectionStore
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };
    private const string RecordFile = "collection.json", StateFile = "current.json";

    /// <summary>How long an index or postings file stays after a newer one replaced it.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(60);

    private readonly ConcurrentDictionary<string, SharedIndex> indexes = new(StringComparer.Ordinal);
    private readonly Lock opening = new();   // one open per new generation, however many searches notice it at once
    private readonly ConcurrentDictionary<string, (long Bytes, IReadOnlyList<CollectionItem> Items)> itemCache = new(StringComparer.Ordinal);

    public CollectionStore(string directory, Jobs.State.IWriterLocks? servers = null)
    {
        Directory.CreateDirectory(CollectionsDirectory = directory);
        this.servers = servers;
    }

    public CollectionStore(DataDirectory data, Jobs.State.IWriterLocks? servers = null) : this(data.Sub("collections"), servers) { }

    /// <summary>With several servers (PostgreSQL), the writers' lock between hosts, taken before the collection's flock.</summary>
    private readonly Jobs.State.IWriterLocks? servers;

    /// <summary>How long a writer waits for another one (an index save takes seconds; minutes means something is stuck).</summary>
    private static readonly TimeSpan WriterWait = TimeSpan.FromMinutes(10);

    /// <summary>The collection's writer lock: between servers (when shared through PostgreSQL), then between processes and threads here.</summary>
    private IDisposable WriterLock(string directory)
    {
        var id = Path.GetFileName(directory);
        var remote = servers?.Acquire("collection:" + id, WriterWait);
        if (servers is not null && remote is null)
            throw new Errors.ConflictException(
                "The collection is busy: another writer (its index job building the final index, or an upload on another server) has held it for minutes. Retry later.");
        try
        {
            var local = new CollectionLock(directory);
            return remote is null ? local : new Both(local, remote);
        }
        catch
        {
            remote?.Dispose();
            throw;
        }
    }

    private sealed class Both(IDisposable inner, IDisposable outer) : IDisposable
    {
        public void Dispose()
        {
            inner.Dispose();
            outer.Dispose();
        }
    }

    public string CollectionsDirectory { get; }

    public string CollectionDirectory(string id) => Path.Combine(CollectionsDirectory, id);

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,80}$")]
    private static partial Regex IdPattern();

    /// <summary>A new id from a name: <c>{name-slug}-{6 hex}</c>.</summary>
    public string NewId(string name)
    {
        var slug = Regex.Replace(name.ToLowerInvariant(), "[^a-z0-9]+", "-").Trim('-');
        if (slug.Length == 0) slug = "collection";
        if (slug.Length > 48) slug = slug[..48].TrimEnd('-');
        string id;
        do id = $"{slug}-{Guid.NewGuid().ToString("N")[..6]}";
        while (Directory.Exists(CollectionDirectory(id)));
        return id;
    }

    public IReadOnlyList<CollectionRecord> List() =>
        Directory.EnumerateDirectories(CollectionsDirectory).Select(Path.GetFileName).Where(n => IdPattern().IsMatch(n!))
            .Select(n => Find(n!)).OfType<CollectionRecord>().OrderBy(c => c.CreatedAt).ToList();

    public CollectionRecord? Find(string id)
    {
        if (!IdPattern().IsMatch(id)) return null;
        var file = Path.Combine(CollectionDirectory(id), RecordFile);
        try
        {
            return JsonSerializer.Deserialize<CollectionRecord>(File.ReadAllText(file), Json);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public CollectionRecord Get(string id) => Find(id)
        ?? throw new NotFoundException($"No collection with id '{id}'. GET /api/v1/collections lists them.");

    /// <summary>Creates the folder with its description and an empty state (an empty collection is complete: nothing to tear).</summary>
    public CollectionRecord Create(CollectionRecord record)
    {
        var dir = CollectionDirectory(record.Id);
        // Staged under a hidden name and renamed into place, so no reader ever sees a folder without its files.
        var staging = Path.Combine(CollectionsDirectory, $".{record.Id}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        AtomicFile.WriteAllText(Path.Combine(staging, RecordFile), JsonSerializer.Serialize(record, Json));
        AtomicFile.WriteAllText(Path.Combine(staging, StateFile), JsonSerializer.Serialize(new CollectionState(), Json));
        Directory.Move(staging, dir);
        return record;
    }

    /// <summary>Changes the description under the collection's lock (null from <paramref name="change"/> = no change).</summary>
    public CollectionRecord Update(string id, Func<CollectionRecord, CollectionRecord?> change)
    {
        using var held = Lock(id);
        var current = Get(id);
        var next = change(current);
        if (next is null) return current;
        next = next with { UpdatedAt = DateTimeOffset.UtcNow };
        AtomicFile.WriteAllText(Path.Combine(CollectionDirectory(id), RecordFile), JsonSerializer.Serialize(next, Json));
        return next;
    }

    /// <summary>
    /// Deletes the collection: under its lock the folder is renamed to a hidden <c>.deleted-*</c> sibling (it disappears at
    /// once, also for other servers, and a writer waiting for the lock finds it gone), then removed (after a crash, by the
    /// start-up sweep).
    /// </summary>
    public void Delete(string id)
    {
        Get(id);
        var trash = Path.Combine(CollectionsDirectory, $".deleted-{id}-{Guid.NewGuid():N}");
        try
        {
            using (Lock(id)) Directory.Move(CollectionDirectory(id), trash);
        }
        catch (DirectoryNotFoundException)
        {
            throw new NotFoundException($"No collection with id '{id}' (it was deleted meanwhile).");
        }
        Forget(id);
        try
        {
            Directory.Delete(trash, recursive: true);
        }
        catch (IOException)
        {
            // A file another server still has open (NFS keeps it as .nfsXXXX): the collection is gone; the start-up sweep
            // removes the rest of the folder.
        }
    }

    /// <summary>The committed state: what a reader may read.</summary>
    public CollectionState State(string id)
    {
        try
        {
            return JsonSerializer.Deserialize<CollectionState>(File.ReadAllText(Path.Combine(CollectionDirectory(id), StateFile)), Json)
                   ?? throw new IOException("empty state");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new NotFoundException($"No collection with id '{id}' (it was deleted).");
        }
    }

    /// <summary>
    /// One write to the collection: under its lock, the append-only files cut back to the committed state, then
    /// <paramref name="change"/> appends (and may save an index or postings generation), then the state it returns is
    /// committed by replacing <c>current.json</c> (null = commit nothing; what it appended is cut off by the next writer).
    /// </summary>
    /// <exception cref="NotFoundException">the collection was deleted.</exception>
    public CollectionState Write(string id, Func<CollectionState, CollectionFiles, CollectionState?> change)
    {
        var dir = CollectionDirectory(id);
        try
        {
            using var held = WriterLock(dir);
            var record = Get(id);
            var state = State(id);
            var files = new CollectionFiles(dir, record, state);
            var next = change(state, files);
            if (next is null) return state;
            next = next with { Generation = state.Generation + 1 };
            AtomicFile.WriteAllText(Path.Combine(dir, StateFile), JsonSerializer.Serialize(next, Json));
            RemoveReplaced(dir, next);
            return next;
        }
        catch (DirectoryNotFoundException)
        {
            throw new NotFoundException($"No collection with id '{id}' (it was deleted).");
        }
    }

    /// <summary>
    /// Appends items (uploads) and commits them with a new generation of the vector index that holds them too: the index
    /// committed so far, read from its file, plus the new vectors. <paramref name="alsoWrite"/> runs before the commit with
    /// the first new id (to store the items' pictures, so a committed item always has them).
    /// </summary>
    public (long First, CollectionState State) Add(string id, int dim, IReadOnlyList<CollectionItem> items, float[] vectors, ushort[] tokens,
        Action<long, CollectionFiles>? alsoWrite = null, VectorQuantization quantization = VectorQuantization.Float32)
    {
        long first = 0;
        var state = Write(id, (current, files) =>
        {
            first = files.Append(items, vectors, tokens);
            alsoWrite?.Invoke(first, files);
            var index = current.IndexFile is { } file
                ? VectorIndexes.Load(files.PathOf(file))
                : VectorIndexes.Create(dim, current.Items + items.Count, quantization);
            if (VectorIndexes.NeedsUpgrade(index, items.Count))
            {
                // The collection outgrows the exact scan: its vectors move into an HNSW graph, saved as the next generation below.
                var grown = VectorIndexes.ToHnsw((ExactVectorIndex)index, quantization, index.Count + items.Count);
                index.Dispose();
                index = grown;
            }
            using var _ = index;
            var keys = new long[items.Count];
            for (var i = 0; i < keys.Length; i++) keys[i] = first + i;
            index.Add(keys, vectors);
            var indexFile = GenerationFile("index", current.Generation + 1);
            index.Save(files.PathOf(indexFile));
            return current with
            {
                Items = files.Count, ItemsBytes = files.ItemsBytes, IndexFile = indexFile, IndexItems = index.Count,
                IndexKind = KindOf(index), IndexQuantization = index.Quantization.ToString().ToLowerInvariant(),
            };
        });
        return (first, state);
    }

    /// <summary>The API's name of an index's kind.</summary>
    public static string KindOf(IVectorIndex index) => index is ExactVectorIndex ? "exact" : "hnsw";

    /// <summary>The file name of generation <paramref name="generation"/> of an index (<c>index</c>) or postings (<c>postings</c>) file.</summary>
    public static string GenerationFile(string kind, long generation) => $"{kind}-{generation:D8}.bin";

    /// <summary>Removes index and postings files that were replaced by a newer generation more than <see cref="Grace"/> ago.</summary>
    private void RemoveReplaced(string dir, CollectionState state)
    {
        foreach (var kind in new[] { "index", "postings" })
        {
            var current = kind == "index" ? state.IndexFile : state.PostingsFile;
            var files = Directory.EnumerateFiles(dir, $"{kind}-*.bin").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            for (var i = 0; i < files.Count - 1; i++)
            {
                if (files[i] == current) continue;
                // Replaced when the next generation was written.
                var replacedAt = File.GetLastWriteTimeUtc(Path.Combine(dir, files[i + 1]!));
                if (DateTime.UtcNow - replacedAt < Grace) continue;
                try { File.Delete(Path.Combine(dir, files[i]!)); }
                catch (IOException) { }
            }
        }
    }

    private IDisposable Lock(string id)
    {
        try
        {
            return WriterLock(CollectionDirectory(id));
        }
        catch (DirectoryNotFoundException)
        {
            throw new NotFoundException($"No collection with id '{id}'.");
        }
    }

    // ------------------------------------------------------------------ readers

    /// <summary>
    /// The vector index the state names, loaded once per file on this server: when <c>current.json</c> names another file (a
    /// writer on any server committed), that one is loaded before the search. Null before the first index.
    /// </summary>
    /// <returns>a lease on the index: dispose it when the search is done (a replaced index is freed once no search holds it).</returns>
    public IndexLease Index(string id)
    {
        for (var attempt = 0; ; attempt++)
        {
            var state = State(id);
            if (state.IndexFile is null) return new IndexLease(null, state);
            if (indexes.TryGetValue(id, out var loaded) && loaded.File == state.IndexFile && loaded.TryAcquire()) return new IndexLease(loaded, state);
            try
            {
                lock (opening)
                {
                    if (indexes.TryGetValue(id, out loaded) && loaded.File == state.IndexFile && loaded.TryAcquire())
                        return new IndexLease(loaded, state);
                    // Searches only: an HNSW file is memory-mapped (nothing kept in the heap; the page cache is shared with other readers).
                    var opened = new SharedIndex(state.IndexFile, VectorIndexes.OpenForSearch(Path.Combine(CollectionDirectory(id), state.IndexFile)));
                    opened.TryAcquire();
                    if (indexes.TryGetValue(id, out var old)) old.Release();   // freed once its last search returns
                    indexes[id] = opened;
                    return new IndexLease(opened, state);
                }
            }
            catch (FileNotFoundException) when (attempt < 5)
            {
                // Replaced and removed between reading the state and opening the file (a reader slower than the grace
                // period): read the state again.
            }
            catch (DirectoryNotFoundException)
            {
                throw new NotFoundException($"No collection '{id}' (it was deleted).");
            }
            catch (InvalidDataException e)
            {
                // The file is the server's, not the client's: a damaged index is a server fault, reported as one.
                throw new IOException($"The index of collection '{id}' ({state.IndexFile}) cannot be read: {e.Message}", e);
            }
        }
    }

    /// <summary>Lets go of what this server keeps of a collection (after a delete).</summary>
    public void Forget(string id)
    {
        if (indexes.TryRemove(id, out var loaded)) loaded.Release();
        itemCache.TryRemove(id, out _);
    }

    /// <summary>The committed items (cached per server until the state has more).</summary>
    public IReadOnlyList<CollectionItem> Items(string id, CollectionState state)
    {
        if (itemCache.TryGetValue(id, out var cached) && cached.Bytes == state.ItemsBytes) return cached.Items;
        var items = new List<CollectionItem>((int)state.Items);
        if (state.ItemsBytes > 0)
        {
            using var f = OpenRead(id, CollectionFiles.Items);
            using var reader = new StreamReader(new BoundedStream(f, state.ItemsBytes));
            while (items.Count < state.Items && reader.ReadLine() is { } line)
                items.Add(JsonSerializer.Deserialize<CollectionItem>(line)!);
        }
        if (items.Count != state.Items) throw new IOException($"The collection's items file holds {items.Count} of its {state.Items} items.");
        itemCache[id] = (state.ItemsBytes, items);
        return items;
    }

    /// <summary>Vectors of items [first, first + count), row-major.</summary>
    public float[] Vectors(string id, int dim, long first, int count)
    {
        var result = new float[(long)count * dim];
        using var f = OpenRead(id, CollectionFiles.Embeddings);
        f.Position = first * dim * sizeof(float);
        f.ReadExactly(MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    /// <summary>Token maps of items [first, first + count), <c>rows·cols</c> codes each.</summary>
    public ushort[] Tokens(string id, int tokensPerItem, long first, long count)
    {
        var result = new ushort[count * tokensPerItem];
        if (result.Length == 0) return result;
        using var f = OpenRead(id, CollectionFiles.Tokens);
        f.Position = first * tokensPerItem * sizeof(ushort);
        f.ReadExactly(MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    public FileStream OpenRead(string id, string name)
    {
        try
        {
            return new FileStream(Path.Combine(CollectionDirectory(id), name), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (DirectoryNotFoundException)
        {
            throw new NotFoundException($"No collection with id '{id}' (it was deleted).");
        }
    }

    /// <summary>A read-only view of the first <c>length</c> bytes of a stream (the committed part of an append-only file).</summary>
    private sealed class BoundedStream(Stream inner, long length) : Stream
    {
        private long read;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = inner.Read(buffer, offset, (int)Math.Min(count, length - read));
            read += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
