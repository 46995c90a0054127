namespace BeitV2.Web.Registry;

/// <summary>API kinds of model (the contract's <c>kind</c>), plus <c>teacher</c> for VQ-KD teachers.</summary>
public static class ApiModelKinds
{
    public const string Tokenizer = "tokenizer";
    public const string Backbone = "backbone";
    public const string Classifier = "classifier";
    public const string Segmenter = "segmenter";
    public const string Pretrain = "pretrain";
    public const string Teacher = "teacher";

    public static readonly IReadOnlyList<string> All = new[] { Tokenizer, Backbone, Classifier, Segmenter, Pretrain, Teacher };
}

/// <summary>Which job or checkpoint made a model.</summary>
/// <param name="Output">which output of the job this is ("model", or the pipeline stage): with <paramref name="JobId"/> it
/// makes registration idempotent, so a run restarted after a crash finds the model instead of adding a second one.</param>
public sealed record ModelLineage(string? JobId = null, string? Checkpoint = null, string? BaseModel = null, IReadOnlyList<string>? Notes = null,
    string? Output = null);

/// <summary>A registered model as the API lists it.</summary>
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
    ModelLineage? Lineage);
