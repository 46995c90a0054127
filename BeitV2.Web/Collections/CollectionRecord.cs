namespace BeitV2.Web.Collections;

/// <summary>
/// A collection's description, <c>{data}/collections/{id}/collection.json</c> (replaced atomically): what it indexes and with
/// which models. Its contents (items, vectors, token maps, index) are in the files <see cref="CollectionState"/> names.
/// </summary>
public sealed record CollectionRecord
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string Dataset { get; init; }
    /// <summary>The model whose pooled feature is each item's vector; queries must use it too.</summary>
    public required string EmbeddingModel { get; init; }
    /// <summary>The tokenizer whose token maps the collection keeps (code statistics, the visual-word browser); null for none.</summary>
    public string? Tokenizer { get; init; }
    /// <summary><c>cls</c> or <c>mean</c>: which of the model's features is the vector.</summary>
    public required string Pooling { get; init; }
    /// <summary>How the index stores vectors: <c>float32</c> (records written before this existed) or <c>int8</c>.</summary>
    public string Quantization { get; init; } = "float32";

    /// <summary><see cref="Quantization"/> as the index layer names it.</summary>
    public BeitV2.Ml.Retrieval.VectorQuantization VectorQuantization =>
        Quantization == "int8" ? BeitV2.Ml.Retrieval.VectorQuantization.Int8 : BeitV2.Ml.Retrieval.VectorQuantization.Float32;
    /// <summary>Length of every vector.</summary>
    public required int Dim { get; init; }
    /// <summary>The token grid of each item (0 without a tokenizer).</summary>
    public int Rows { get; init; }
    public int Cols { get; init; }
    public int? CodebookSize { get; init; }
    /// <summary>How the tokenizer turns an image into its input (set by the first run of the index job): patch crops show that view.</summary>
    public BeitV2.Ml.Checkpoints.ModelPreprocessing? TokenizerInput { get; init; }
    /// <summary>The dataset's class names (an item's label indexes them); null for unlabelled data.</summary>
    public IReadOnlyList<string>? Labels { get; init; }
    /// <summary>The <c>index</c> job that fills the collection from its dataset.</summary>
    public string? Job { get; init; }
    /// <summary>How many dataset images the job indexes (the first ones, in dataset order).</summary>
    public long Planned { get; init; }
    /// <summary><see cref="CollectionStatus.Indexing"/> until the job has indexed every planned image, then <see cref="CollectionStatus.Ready"/>.</summary>
    public string Status { get; init; } = CollectionStatus.Indexing;
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>The statuses of a collection as the API reports them (failed and cancelled come from its job).</summary>
public static class CollectionStatus
{
    public const string Indexing = "indexing";
    public const string Ready = "ready";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
}
