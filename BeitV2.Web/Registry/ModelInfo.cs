using BeitV2.Ml.Checkpoints;

namespace BeitV2.Web.Registry;

/// <summary>Which job or checkpoint made a model.</summary>
/// <param name="Output">which output of the job this is ("model", or the pipeline stage): with <paramref name="JobId"/> it
/// makes registration idempotent, so a run restarted after a crash finds the model instead of adding a second one.</param>
public sealed record ModelLineage(string? JobId = null, string? Checkpoint = null, string? BaseModel = null, IReadOnlyList<string>? Notes = null,
    string? Output = null);

/// <summary>A registered model as the API lists it (plus <c>shortName</c>, a few words for pickers).</summary>
/// <param name="Domain">what the model knows: its training dataset, classes, input kind, measured quality and out-of-domain fit
/// (every field "unknown" for a package that does not say).</param>
public sealed record ModelInfo(
    string Id,
    string Name,
    string Kind,
    string Architecture,
    int ImageSize,
    int PatchSize,
    int EmbedDim,
    int Depth,
    int? CodebookSize,
    int? Classes,
    string Source,
    DateTimeOffset CreatedAt,
    bool IsDefault,
    bool HasLabels,
    ModelLineage? Lineage,
    ModelDomain? Domain = null)
{
    /// <summary>A few words for pickers (<see cref="ModelNames"/>); <see cref="Name"/> is the full name.</summary>
    public string ShortName { get; init; } = Name;

    /// <summary>The inference endpoints ("tokens", "embeddings", "classify", "segment") that use this model when a request
    /// names none; filled in by the models API (the registry knows kinds' defaults, not endpoints).</summary>
    public IReadOnlyList<string>? DefaultFor { get; init; }
}
