using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace BeitV2.Ml.Retrieval;

/// <summary>
/// Approximate cosine search on a USearch HNSW graph (native memory): the index of large collections. Vectors are stored
/// as float32 or int8 (USearch normalises each vector and scales it to [-127, 127]; 4× smaller, recall measured by the
/// tests and the bench). Keys are the items' ids.
/// <para>
/// Threads. USearch runs each native add or search on one of a fixed number of per-thread contexts (more concurrent
/// calls than contexts is undefined behaviour in a release build), and growing the capacity must not overlap anything.
/// USearch would let searches run during adds, but such a search can meet a node whose links are not yet written and
/// come back with fewer than k results (seen in this project's tests), so here an <see cref="Add"/> holds the write lock
/// for its whole batch (inserting it on <see cref="Threads"/> threads at once) and searches share the read lock: a
/// search sees a batch entirely or not at all. Every native call also holds one of <see cref="Threads"/> slots (a
/// semaphore, as many as contexts), so any number of callers is safe.
/// </para>
/// <para>
/// File: USearch's own serialisation followed by a 24-byte trailer (body length, XxHash3 of the body, magic
/// "BEITHNSW"); USearch ignores bytes after its index, so <see cref="View"/> maps the very file <see cref="Save"/> wrote.
/// The checksum is what lets a damaged file be refused: USearch itself catches truncation but not flipped bytes.
/// </para>
/// </summary>
public sealed unsafe class HnswVectorIndex : IVectorIndex
{
    /// <summary>Last eight bytes of every file this class writes ("BEITHNSW").</summary>
    public const ulong Magic = 0x57534E4854494542;
    private const int TrailerBytes = 24;

    private readonly ReaderWriterLockSlim gate = new(LockRecursionPolicy.NoRecursion);
    private readonly Lock adding = new();
    private readonly SemaphoreSlim slots;
    private nint handle;

    private HnswVectorIndex(nint handle, int dimensions, VectorQuantization quantization, bool readOnly, HnswSettings settings)
    {
        this.handle = handle;
        Dimensions = dimensions;
        Quantization = quantization;
        IsReadOnly = readOnly;
        Settings = settings;
        Threads = Math.Max(2, Environment.ProcessorCount);
        slots = new SemaphoreSlim(Threads, Threads);
        SetThreads();
    }

    ~HnswVectorIndex() => FreeNative();

    public int Dimensions { get; }
    public VectorQuantization Quantization { get; }
    /// <summary>Graph parameters this index was built (or opened) with.</summary>
    public HnswSettings Settings { get; }
    /// <summary>True for a <see cref="View"/>: the file is mapped read-only and <see cref="Add"/> refuses.</summary>
    public bool IsReadOnly { get; }
    /// <summary>
    /// Candidates examined per query (HNSW's ef; starts at <see cref="HnswSettings.ExpansionSearch"/>): more is slower
    /// and finds more of the true neighbours. Not stored in the file.
    /// </summary>
    public int ExpansionSearch
    {
        get
        {
            gate.EnterReadLock();
            try { return (int)USearchNative.ExpansionSearch(Live(), out _); }
            finally { gate.ExitReadLock(); }
        }
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            gate.EnterWriteLock();
            try { USearchNative.ChangeExpansionSearch(Live(), (nuint)value, out _); }
            finally { gate.ExitWriteLock(); }
        }
    }

    /// <summary>Adds and searches that may run at once (USearch's per-thread contexts).</summary>
    public int Threads { get; }

    public long Count
    {
        get
        {
            gate.EnterReadLock();
            try { return (long)USearchNative.Size(Live(), out _); }
            finally { gate.ExitReadLock(); }
        }
    }

    /// <summary>Native memory the index holds (graph, vectors, per-thread contexts); a view's mapped file is not counted.</summary>
    public long MemoryBytes
    {
        get
        {
            gate.EnterReadLock();
            try { return (long)USearchNative.MemoryUsage(Live(), out _); }
            finally { gate.ExitReadLock(); }
        }
    }

    /// <summary>A new, empty index.</summary>
    /// <param name="expectedCount">vectors to make room for at once (it grows past this by doubling).</param>
    public static HnswVectorIndex Create(int dimensions, VectorQuantization quantization = VectorQuantization.Float32,
        HnswSettings? settings = null, long expectedCount = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        settings ??= HnswSettings.Default;
        var native = Init(dimensions, quantization, settings);
        var index = new HnswVectorIndex(native, dimensions, quantization, readOnly: false, settings);
        if (expectedCount > 0) index.Grow(expectedCount);
        return index;
    }

    /// <summary>Reads a file <see cref="Save"/> wrote into memory (writable: more vectors can be added and saved).</summary>
    /// <exception cref="InvalidDataException">not such a file, or truncated or damaged.</exception>
    public static HnswVectorIndex Load(string path, HnswSettings? settings = null) => Open(path, view: false, settings);

    /// <summary>
    /// Maps a file <see cref="Save"/> wrote read-only, without reading it into memory (pages come in as searches touch
    /// them and the kernel may drop them again), for searching indexes larger than the memory a server wants to spend.
    /// The file is checksummed once on opening (a sequential read through the page cache). A later <see cref="Save"/> to
    /// the same path renames a new file into place, so the mapped one stays intact until this view is disposed.
    /// </summary>
    /// <exception cref="InvalidDataException">not such a file, or truncated or damaged.</exception>
    public static HnswVectorIndex View(string path, HnswSettings? settings = null) => Open(path, view: true, settings);

    private static HnswVectorIndex Open(string path, bool view, HnswSettings? settings)
    {
        settings ??= HnswSettings.Default;
        var bodyLength = CheckFile(path);
        USearchNative.InitOptions meta = default;
        USearchNative.Metadata(path, &meta, out var error);
        if (error != 0 || meta.MetricKind != USearchNative.MetricCos || meta.Dimensions == 0 || meta.Dimensions > int.MaxValue ||
            (meta.Quantization != USearchNative.ScalarF32 && meta.Quantization != USearchNative.ScalarI8))
            throw new InvalidDataException("The vector index file is not a cosine index of float32 or int8 vectors.");
        var quantization = meta.Quantization == USearchNative.ScalarI8 ? VectorQuantization.Int8 : VectorQuantization.Float32;
        var native = Init((int)meta.Dimensions, quantization, settings);
        if (view) USearchNative.View(native, path, out error);
        else USearchNative.Load(native, path, out error);
        if (error != 0)
        {
            var message = USearchNative.Text(error);
            USearchNative.Free(native, out _);
            throw new InvalidDataException($"The vector index file is damaged ({message}).");
        }
        if ((long)USearchNative.SerializedLength(native, out _) != bodyLength)
        {
            USearchNative.Free(native, out _);
            throw new InvalidDataException("The vector index file's length does not match its contents.");
        }
        return new HnswVectorIndex(native, (int)meta.Dimensions, quantization, view, settings);
    }

    public void Add(ReadOnlySpan<long> keys, ReadOnlySpan<float> vectors)
    {
        if (vectors.Length != keys.Length * Dimensions)
            throw new ArgumentException($"{keys.Length} keys need {keys.Length * Dimensions} floats, not {vectors.Length}.", nameof(vectors));
        if (IsReadOnly) throw new InvalidOperationException("This index is a read-only view of its file; load it to add vectors.");
        if (keys.IsEmpty) return;
        lock (adding)
        {
            var batch = new HashSet<long>(keys.Length);
            gate.EnterReadLock();
            try
            {
                foreach (var key in keys)
                    if (!batch.Add(key) || USearchNative.Contains(Live(), (ulong)key, out _))
                        throw new ArgumentException($"Key {key} is already in the index.", nameof(keys));
            }
            finally { gate.ExitReadLock(); }

            Grow(Count + keys.Length);
            gate.EnterWriteLock();
            try
            {
                var native = Live();
                fixed (long* keyPointer = keys)
                fixed (float* vectorPointer = vectors)
                {
                    // Pointers (not spans) cross into the workers; the fixed block outlives Parallel.For.
                    nint keyAddress = (nint)keyPointer, vectorAddress = (nint)vectorPointer;
                    var dimensions = Dimensions;
                    var failure = (string?)null;
                    Parallel.For(0, keys.Length, new ParallelOptions { MaxDegreeOfParallelism = keys.Length < 64 ? 1 : Threads }, i =>
                    {
                        slots.Wait();
                        try
                        {
                            USearchNative.Add(native, (ulong)((long*)keyAddress)[i], (float*)vectorAddress + (long)i * dimensions,
                                USearchNative.ScalarF32, out var error);
                            if (error != 0) failure ??= USearchNative.Text(error);
                        }
                        finally { slots.Release(); }
                    });
                    if (failure is not null) throw new InvalidOperationException($"The vector index refused an add: {failure}");
                }
            }
            finally { gate.ExitWriteLock(); }
        }
    }

    public IReadOnlyList<VectorHit> Search(ReadOnlySpan<float> query, int k)
    {
        if (query.Length != Dimensions) throw new ArgumentException($"A query of {query.Length} floats for an index of {Dimensions}.", nameof(query));
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        var keys = new ulong[k];
        var distances = new float[k];
        nuint found;
        gate.EnterReadLock();
        try
        {
            var native = Live();
            slots.Wait();
            try
            {
                fixed (float* q = query)
                fixed (ulong* keyPointer = keys)
                fixed (float* distancePointer = distances)
                {
                    found = USearchNative.Search(native, q, USearchNative.ScalarF32, (nuint)k, keyPointer, distancePointer, out var error);
                    USearchNative.Check(error, "Vector search failed");
                }
            }
            finally { slots.Release(); }
        }
        finally { gate.ExitReadLock(); }
        var hits = new VectorHit[(int)found];
        for (var i = 0; i < hits.Length; i++) hits[i] = new VectorHit((long)keys[i], 1f - distances[i]);   // cosine distance = 1 − similarity
        return hits;
    }

    /// <summary>
    /// Writes the index atomically: USearch serialises into a temporary file beside <paramref name="path"/>, the trailer
    /// (length, checksum, magic) is appended, the file is flushed to disk and renamed over <paramref name="path"/>.
    /// Adds wait meanwhile; searches go on.
    /// </summary>
    public void Save(string path)
    {
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            lock (adding)
            {
                gate.EnterReadLock();
                try
                {
                    USearchNative.Save(Live(), temp, out var error);
                    USearchNative.Check(error, "Saving the vector index failed");
                }
                finally { gate.ExitReadLock(); }
            }
            using (var stream = new FileStream(temp, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1 << 20))
            {
                var length = stream.Length;
                var hash = Hash(stream, length);
                Span<byte> trailer = stackalloc byte[TrailerBytes];
                BinaryPrimitives.WriteInt64LittleEndian(trailer, length);
                BinaryPrimitives.WriteUInt64LittleEndian(trailer[8..], hash);
                BinaryPrimitives.WriteUInt64LittleEndian(trailer[16..], Magic);
                stream.Seek(0, SeekOrigin.End);
                stream.Write(trailer);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Frees the native graph and vectors (and unmaps a view's file); the index cannot be used afterwards.</summary>
    public void Dispose()
    {
        gate.EnterWriteLock();
        try { FreeNative(); }
        finally { gate.ExitWriteLock(); }
        GC.SuppressFinalize(this);
    }

    /// <summary>True when <paramref name="path"/> ends with this class's trailer (used to tell index files apart).</summary>
    public static bool IsHnswFile(string path)
    {
        using var stream = File.OpenRead(path);
        if (stream.Length < TrailerBytes) return false;
        stream.Seek(-8, SeekOrigin.End);
        Span<byte> magic = stackalloc byte[8];
        stream.ReadExactly(magic);
        return BinaryPrimitives.ReadUInt64LittleEndian(magic) == Magic;
    }

    /// <summary>USearch's version string, e.g. "2.26.6", and the SIMD code paths this CPU gets.</summary>
    public static string LibraryVersion => USearchNative.Text(USearchNative.Version());
    public static string HardwareAcceleration => USearchNative.Text(USearchNative.HardwareAvailable());

    /// <summary>Checks the trailer and checksum; returns the length of the USearch part.</summary>
    private static long CheckFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        if (stream.Length < TrailerBytes + 8) throw new InvalidDataException("Not an HNSW vector index file.");
        stream.Seek(-TrailerBytes, SeekOrigin.End);
        Span<byte> trailer = stackalloc byte[TrailerBytes];
        stream.ReadExactly(trailer);
        if (BinaryPrimitives.ReadUInt64LittleEndian(trailer[16..]) != Magic) throw new InvalidDataException("Not an HNSW vector index file.");
        var length = BinaryPrimitives.ReadInt64LittleEndian(trailer);
        if (length != stream.Length - TrailerBytes) throw new InvalidDataException("The vector index file is truncated or damaged.");
        stream.Seek(0, SeekOrigin.Begin);
        if (Hash(stream, length) != BinaryPrimitives.ReadUInt64LittleEndian(trailer[8..]))
            throw new InvalidDataException("The vector index file is damaged (checksum mismatch).");
        return length;
    }

    private static ulong Hash(Stream stream, long length)
    {
        stream.Seek(0, SeekOrigin.Begin);
        var hasher = new XxHash3();
        var buffer = new byte[1 << 20];
        for (var left = length; left > 0;)
        {
            var read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (read == 0) throw new InvalidDataException("The vector index file is truncated.");
            hasher.Append(buffer.AsSpan(0, read));
            left -= read;
        }
        return hasher.GetCurrentHashAsUInt64();
    }

    private static nint Init(int dimensions, VectorQuantization quantization, HnswSettings settings)
    {
        var options = new USearchNative.InitOptions
        {
            MetricKind = USearchNative.MetricCos,
            Quantization = quantization == VectorQuantization.Int8 ? USearchNative.ScalarI8 : USearchNative.ScalarF32,
            Dimensions = (nuint)dimensions,
            Connectivity = (nuint)settings.Connectivity,
            ExpansionAdd = (nuint)settings.ExpansionAdd,
            ExpansionSearch = (nuint)settings.ExpansionSearch,
        };
        var native = USearchNative.Init(&options, out var error);
        if (error != 0)
        {
            if (native != 0) USearchNative.Free(native, out _);
            USearchNative.Check(error, "Creating the vector index failed");
        }
        return native;
    }

    /// <summary>Makes room for <paramref name="needed"/> vectors (doubling), alone: a reserve must not overlap adds or searches.</summary>
    private void Grow(long needed)
    {
        gate.EnterWriteLock();
        try
        {
            var native = Live();
            var capacity = (long)USearchNative.Capacity(native, out _);
            if (capacity >= needed) return;
            USearchNative.Reserve(native, (nuint)Math.Max(needed, capacity * 2), out var error);
            USearchNative.Check(error, "Growing the vector index failed");
            SetThreads();   // a reserve resets the contexts to the machine's core count
        }
        finally { gate.ExitWriteLock(); }
    }

    private void SetThreads()
    {
        // The semaphore that bounds concurrent native calls is only safe if USearch really has this many contexts.
        USearchNative.ChangeThreadsAdd(handle, (nuint)Threads, out var error);
        USearchNative.Check(error, "Setting the vector index's add threads failed");
        USearchNative.ChangeThreadsSearch(handle, (nuint)Threads, out error);
        USearchNative.Check(error, "Setting the vector index's search threads failed");
    }

    private nint Live() => handle != 0 ? handle : throw new ObjectDisposedException(nameof(HnswVectorIndex));

    private void FreeNative()
    {
        var native = Interlocked.Exchange(ref handle, 0);
        if (native != 0) USearchNative.Free(native, out _);
    }
}
