using System.Text.Json;

namespace BeitV2.Web.Collections;

/// <summary>The body of <c>POST /api/v1/collections</c>.</summary>
/// <param name="EmbeddingModel">default: the model <c>POST /api/v1/embeddings</c> uses when a request names none.</param>
/// <param name="Tokenizer">with one, token maps and the inverted index code → patches are stored.</param>
/// <param name="Pooling"><c>cls</c> (default) or <c>mean</c>.</param>
/// <param name="MaxImages">index at most this many images of the dataset (its first ones); default all.</param>
/// <param name="Quantization"><c>float32</c> (default: exact scores) or <c>int8</c> (4× smaller vectors in an HNSW index at any size;
/// its recall against the exact scan is what <c>BeitV2.Bench collections</c> and <c>vectors</c> measure).</param>
/// <param name="Config">the index job's other settings (additive): <c>batchSize</c>, <c>checkpointEverySteps</c>, <c>reportEverySteps</c>.</param>
public sealed record CollectionRequest(string? Name, string? Dataset, string? EmbeddingModel, string? Tokenizer, string? Pooling, int? MaxImages,
    JsonElement? Config, string? Quantization = null);

/// <summary>The answer to a create: the collection and the index job filling it.</summary>
public sealed record CollectionAccepted(string Id, string Status, string Job);

/// <summary>The vector index of a collection: <c>kind</c> exact or hnsw, <c>quantization</c> float32 or int8, its file's bytes.</summary>
public sealed record CollectionIndexInfo(string Kind, string Quantization, long Bytes);

/// <summary>A collection as the API describes it.</summary>
/// <param name="Items">items it holds (committed).</param>
/// <param name="Indexed">items the vector index holds (equal to <paramref name="Items"/> once ready).</param>
/// <param name="Planned">dataset images its index job indexes (additive).</param>
/// <param name="Index">null before the index job has built it.</param>
/// <param name="Error">why its index job failed, when it did.</param>
public sealed record CollectionView(string Id, string Name, string Dataset, string EmbeddingModel, string? Tokenizer, string Pooling, int Dim,
    string Status, string? Job, long Items, long Indexed, IReadOnlyList<string>? Labels, CollectionIndexInfo? Index, long DiskBytes, string? Error,
    DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, long Planned, int? CodebookSize);

/// <summary>One uploaded image added to a collection.</summary>
public sealed record AddedImage(long Item, string? FileName);

/// <summary>The answer to an upload: the new items and how many the collection holds now.</summary>
public sealed record AddedImages(IReadOnlyList<AddedImage> Added, long Items);

/// <summary>What a search was asked with: an indexed item, or an image (<c>item</c> null).</summary>
public sealed record SearchQuery(long? Item);

/// <summary>One neighbour: the item, its cosine similarity to the query, its class name when the dataset has them, its thumbnail URL.</summary>
public sealed record SearchHit(long Item, float Score, string? Label, string Thumbnail);

public sealed record SearchResults(string Collection, string Model, int K, SearchQuery Query, IReadOnlyList<SearchHit> Results);

/// <summary>An item: its class name, where it came from and the size of its image.</summary>
/// <param name="Source">the dataset index (as text) of a dataset item, the file name of an uploaded one ("upload" without a name).</param>
/// <param name="DatasetIndex">the dataset index, or null for an upload (additive).</param>
/// <param name="FileName">the uploaded file's name, or null (additive).</param>
public sealed record ItemView(long Item, string? Label, string Source, int Width, int Height, int? DatasetIndex, string? FileName, string Thumbnail);

/// <summary>One patch of the visual-word browser: the item, the patch's place in its token grid, its crop's URL.</summary>
public sealed record CodebookPatch(long Item, int Row, int Col, string? Label, string Crop);

public sealed record CodebookPage(string Model, int Code, string Collection, long Total, IReadOnlyList<CodebookPatch> Patches);
