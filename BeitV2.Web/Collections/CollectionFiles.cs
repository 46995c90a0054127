using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace BeitV2.Web.Collections;

/// <summary>
/// The append-only files of one collection, opened by a writer holding its <see cref="CollectionLock"/>: on open, whatever
/// follows the committed lengths (a writer that crashed before its commit) is cut off, so an item is never stored twice.
/// Appends go to disk (flushed) before the writer commits the new <see cref="CollectionState"/>.
/// </summary>
public sealed class CollectionFiles
{
    public const string Items = "items.jsonl", Embeddings = "embeddings.f32", Tokens = "tokens.u16", Uploads = "uploads";

    private readonly string directory;
    private readonly int dim, tokensPerItem;
    private long items, itemsBytes;

    internal CollectionFiles(string directory, CollectionRecord record, CollectionState state)
    {
        this.directory = directory;
        dim = record.Dim;
        tokensPerItem = record.Rows * record.Cols;
        items = state.Items;
        itemsBytes = state.ItemsBytes;
        Truncate(Items, itemsBytes);
        Truncate(Embeddings, items * dim * sizeof(float));
        if (tokensPerItem > 0) Truncate(Tokens, items * tokensPerItem * sizeof(ushort));
    }

    /// <summary>Items held, committed or appended by this writer.</summary>
    public long Count => items;
    public long ItemsBytes => itemsBytes;
    public string Directory => directory;

    /// <summary>Appends items with their vectors (<c>n × dim</c>) and token maps (<c>n × rows·cols</c>, empty without a tokenizer); returns the first new id.</summary>
    public long Append(IReadOnlyList<CollectionItem> newItems, ReadOnlySpan<float> vectors, ReadOnlySpan<ushort> tokens)
    {
        if (vectors.Length != newItems.Count * dim) throw new ArgumentException($"{newItems.Count} items need {newItems.Count * dim} floats, not {vectors.Length}.");
        if (tokens.Length != newItems.Count * tokensPerItem) throw new ArgumentException($"{newItems.Count} items need {newItems.Count * tokensPerItem} tokens, not {tokens.Length}.");
        var first = items;
        var text = new StringBuilder();
        foreach (var item in newItems) text.Append(JsonSerializer.Serialize(item)).Append('\n');
        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        AppendBytes(Items, bytes);
        AppendBytes(Embeddings, MemoryMarshal.AsBytes(vectors));
        if (tokensPerItem > 0) AppendBytes(Tokens, MemoryMarshal.AsBytes(tokens));
        items += newItems.Count;
        itemsBytes += bytes.Length;
        return first;
    }

    /// <summary>The path of a file of the collection.</summary>
    public string PathOf(string name) => Path.Combine(directory, name);

    private void AppendBytes(string name, ReadOnlySpan<byte> bytes)
    {
        using var f = new FileStream(PathOf(name), FileMode.Append, FileAccess.Write, FileShare.Read);
        f.Write(bytes);
        f.Flush(flushToDisk: true);
    }

    private void Truncate(string name, long length)
    {
        var path = PathOf(name);
        if (!File.Exists(path))
        {
            if (length > 0) throw new IOException($"The collection's {name} is missing: it holds {items} committed items.");
            return;
        }
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read);
        if (f.Length < length) throw new IOException($"The collection's {name} is shorter than its {items} committed items.");
        if (f.Length > length) f.SetLength(length);
    }
}
