using BeitV2.Ml.Retrieval;

namespace BeitV2.Web.Collections;

/// <summary>
/// One opened index file of a collection, shared by the searches of this server: the store holds one reference while the
/// file is current, each search one more (<see cref="IndexLease"/>). The last release disposes it, so a replaced or deleted
/// generation's memory map and file descriptor go as soon as no search uses it (its disk space with them), not whenever
/// a finalizer runs.
/// </summary>
internal sealed class SharedIndex(string file, IVectorIndex index)
{
    private int references = 1;   // the store's

    public string File { get; } = file;
    public IVectorIndex Index { get; } = index;

    /// <summary>A new reference, unless the last one is already gone (the index disposed).</summary>
    public bool TryAcquire()
    {
        for (var seen = Volatile.Read(ref references); seen > 0; seen = Volatile.Read(ref references))
            if (Interlocked.CompareExchange(ref references, seen + 1, seen) == seen) return true;
        return false;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref references) == 0) Index.Dispose();
    }
}

/// <summary>A search's hold on a collection's index (<see cref="CollectionStore.Index"/>); dispose when the search is done.</summary>
public sealed class IndexLease : IDisposable
{
    private SharedIndex? shared;

    internal IndexLease(SharedIndex? shared, CollectionState state)
    {
        this.shared = shared;
        State = state;
    }

    /// <summary>The index; null before the collection's first one.</summary>
    public IVectorIndex? Index => shared?.Index;
    /// <summary>The committed state the index belongs to.</summary>
    public CollectionState State { get; }

    public void Dispose() => Interlocked.Exchange(ref shared, null)?.Release();
}
