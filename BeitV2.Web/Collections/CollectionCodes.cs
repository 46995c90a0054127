using System.Collections.Concurrent;

namespace BeitV2.Web.Collections;

/// <summary>How often one code occurs among a class's patches.</summary>
public sealed record CodeShare(int Code, long Count, double Share);

/// <summary>The most frequent codes of one class.</summary>
public sealed record ClassCodes(string Label, IReadOnlyList<CodeShare> Codes);

/// <summary>
/// Code usage over a collection's token maps.
/// </summary>
/// <param name="Tokens">patches counted: items × tokens per item.</param>
/// <param name="UsedCodes">codes with at least one patch.</param>
/// <param name="Perplexity">exp of the entropy of the code distribution: the number of equally used codes that would spread the patches as evenly.</param>
/// <param name="Counts">patches per code, index = code.</param>
/// <param name="TopCodesPerClass">per class of the dataset, its most frequent codes (share = of that class's patches); null for unlabelled data.</param>
/// <param name="Items">items counted (additive).</param>
/// <param name="TokensPerItem">rows × cols of the token grid (additive).</param>
public sealed record CodeStatistics(int CodebookSize, long Tokens, int UsedCodes, double Perplexity, IReadOnlyList<long> Counts,
    IReadOnlyList<ClassCodes>? TopCodesPerClass, long Items, int TokensPerItem);

/// <summary>A page of the patches that map to one code.</summary>
public sealed record CodePatches(long Total, IReadOnlyList<CodePosting> Patches);

/// <summary>
/// Reads a collection's token maps: the patches of a code (from the job's inverted index, <see cref="CodePostings"/>, plus
/// a scan of the token maps of items added after it) and the code statistics (computed once per committed state and kept).
/// </summary>
public sealed class CollectionCodes(CollectionStore store)
{
    /// <summary>How many codes <see cref="CodeStatistics.TopCodesPerClass"/> lists per class.</summary>
    public const int TopCodes = 10;

    private readonly ConcurrentDictionary<string, (long Generation, CodeStatistics Statistics)> statistics = new(StringComparer.Ordinal);

    public CodePatches Patches(CollectionRecord collection, CollectionState state, int code, long offset, int limit)
    {
        var size = collection.CodebookSize!.Value;
        long fromPostings = 0;
        var page = new List<CodePosting>();
        if (state.PostingsFile is { } file)
        {
            using var f = store.OpenRead(collection.Id, file);
            var (total, read) = CodePostings.Read(f, size, code, offset, limit);
            fromPostings = total;
            page.AddRange(read);
        }
        // Items after the postings (uploads): their token maps, scanned in item order.
        var perItem = collection.Rows * collection.Cols;
        var tail = store.Tokens(collection.Id, perItem, state.PostingsItems, state.Items - state.PostingsItems);
        var tailTotal = 0L;
        for (var i = 0; i < tail.Length; i++)
        {
            if (tail[i] != code) continue;
            var position = fromPostings + tailTotal++;
            if (position >= offset && page.Count < limit)
                page.Add(new CodePosting(state.PostingsItems + i / perItem, i % perItem / collection.Cols, i % collection.Cols));
        }
        return new CodePatches(fromPostings + tailTotal, page);
    }

    public CodeStatistics Statistics(CollectionRecord collection, CollectionState state, IReadOnlyList<CollectionItem> items)
    {
        if (statistics.TryGetValue(collection.Id, out var cached) && cached.Generation == state.Generation) return cached.Statistics;
        var size = collection.CodebookSize!.Value;
        var perItem = collection.Rows * collection.Cols;
        var labels = collection.Labels is { Count: > 0 } names && items.All(i => i.Label >= 0 || i.Uploaded) ? names : null;
        var counts = new long[size];
        var perClass = labels is null ? null : new long[labels.Count, size];
        const int Chunk = 8192;
        for (long first = 0; first < state.Items; first += Chunk)
        {
            var n = Math.Min(Chunk, state.Items - first);
            var tokens = store.Tokens(collection.Id, perItem, first, n);
            for (var i = 0; i < tokens.Length; i++)
            {
                var code = tokens[i];
                counts[code]++;
                if (perClass is not null && items[(int)(first + i / perItem)].Label is var label and >= 0) perClass[label, code]++;
            }
        }
        var tokensCounted = counts.Sum();
        var entropy = 0.0;
        foreach (var count in counts)
            if (count > 0)
            {
                var p = (double)count / tokensCounted;
                entropy -= p * Math.Log(p);
            }
        List<ClassCodes>? top = null;
        if (perClass is not null)
        {
            top = [];
            for (var c = 0; c < labels!.Count; c++)
            {
                var classTotal = 0L;
                for (var k = 0; k < size; k++) classTotal += perClass[c, k];
                var codes = Enumerable.Range(0, size).Where(k => perClass[c, k] > 0).OrderByDescending(k => perClass[c, k]).ThenBy(k => k).Take(TopCodes)
                    .Select(k => new CodeShare(k, perClass[c, k], Math.Round((double)perClass[c, k] / classTotal, 6))).ToList();
                top.Add(new ClassCodes(labels[c], codes));
            }
        }
        var result = new CodeStatistics(size, tokensCounted, counts.Count(n => n > 0), tokensCounted > 0 ? Math.Round(Math.Exp(entropy), 4) : 0,
            counts, top, state.Items, perItem);
        statistics[collection.Id] = (state.Generation, result);
        return result;
    }
}
