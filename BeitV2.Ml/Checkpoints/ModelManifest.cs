using System.Text.Json;
using System.Text.Json.Serialization;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// <c>manifest.json</c> of a saved model: everything needed to rebuild it without knowing its shape
/// (kind + full config), plus optional class labels and free-form metadata.
/// </summary>
public sealed record ModelManifest
{
    public const string FormatName = "beitv2-model";
    public const int CurrentVersion = 1;

    public string Format { get; init; } = FormatName;
    public int FormatVersion { get; init; } = CurrentVersion;
    /// <summary>One of <see cref="ModelKind.All"/>.</summary>
    public required string Kind { get; init; }
    /// <summary>The model config in the reference's snake_case keyword names.</summary>
    public required JsonElement Config { get; init; }
    /// <summary>Class names of a classifier head, index = class id.</summary>
    public IReadOnlyList<string>? Labels { get; init; }
    /// <summary>File name of the safetensors weights, next to the manifest.</summary>
    public string Weights { get; init; } = "weights.safetensors";
    /// <summary>SHA-256 of the weights file, checked on load.</summary>
    public string? WeightsSha256 { get; init; }
    public DateTimeOffset CreatedUtc { get; init; } = DateTimeOffset.UtcNow;
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    /// <summary>
    /// The input the model expects (optional, additive): absent in packages written before it existed, which
    /// are served with their kind's defaults; null for kinds that are not served from images (teachers).
    /// </summary>
    public ModelPreprocessing? Preprocessing { get; init; }
    /// <summary>
    /// What the model knows (optional, additive): training dataset, classes, input kind, measured quality, out-of-domain
    /// fit. Absent in packages written before it existed; read those through <see cref="DomainOrUnknown"/>.
    /// </summary>
    // Not written when null, so a package without a domain keeps the manifest older builds read.
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ModelDomain? Domain { get; init; }

    /// <summary><see cref="Domain"/>, or a domain that says "unknown" everywhere.</summary>
    [JsonIgnore]
    public ModelDomain DomainOrUnknown => Domain ?? ModelDomain.UnknownDomain;
}
