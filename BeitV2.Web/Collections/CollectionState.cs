namespace BeitV2.Web.Collections;

/// <summary>
/// What a collection holds now, <c>current.json</c> beside its files, replaced atomically: the commit point of every change.
/// The append-only files (<c>items.jsonl</c>, <c>embeddings.f32</c>, <c>tokens.u16</c>) are read only up to the lengths it
/// gives, and the index and postings files it names are never changed once written (a change writes a new generation),
/// so a reader that reads this file first never sees a torn index or a half-appended item, whatever a writer does meanwhile.
/// </summary>
public sealed record CollectionState
{
    /// <summary>Items committed (ids 0..Items-1).</summary>
    public long Items { get; init; }
    /// <summary>Bytes of <c>items.jsonl</c> that hold those items; anything after is a crashed writer's tail.</summary>
    public long ItemsBytes { get; init; }
    /// <summary>Bumped by every commit; names the new index and postings files.</summary>
    public long Generation { get; init; }
    /// <summary>The vector index file (<c>index-{generation}.bin</c>), null before the first one.</summary>
    public string? IndexFile { get; init; }
    /// <summary>Items the index holds (ids 0..IndexItems-1).</summary>
    public long IndexItems { get; init; }
    /// <summary><c>exact</c> or <c>hnsw</c>.</summary>
    public string? IndexKind { get; init; }
    /// <summary><c>float32</c> or <c>int8</c>.</summary>
    public string? IndexQuantization { get; init; }
    /// <summary>The inverted index code → patches (<c>postings-{generation}.bin</c>, see <see cref="CodePostings"/>), null before the first one.</summary>
    public string? PostingsFile { get; init; }
    /// <summary>Items the postings file covers; the token maps of later items (uploads) are scanned instead.</summary>
    public long PostingsItems { get; init; }
    /// <summary>Seconds the index job spent embedding, summed over its runs.</summary>
    public double JobSeconds { get; init; }
    /// <summary>Images the index job embedded in those seconds.</summary>
    public long JobImages { get; init; }
}
