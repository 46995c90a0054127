using System.Text.Json;

namespace BeitV2.Ml.Checkpoints;

/// <summary>What <see cref="ArchitectureDeduction.Deduce"/> read from a state dict.</summary>
/// <param name="Kind">The kind, one of <see cref="Catalog.ModelCatalog.Kinds"/>.</param>
/// <param name="Config">
/// The typed config: <see cref="Models.VitConfig"/>, <see cref="Models.MimConfig"/>,
/// <see cref="Models.Vqkd.VqkdConfig"/>, <see cref="Models.Teachers.ClipVisionConfig"/> or
/// <see cref="Models.Teachers.DinoConfig"/> or <see cref="Models.Segmentation.SegmentationConfig"/>.
/// </param>
/// <param name="ConfigJson">The config in <see cref="Models.ModelJson"/> snake_case, as a manifest stores it.</param>
/// <param name="Notes">One line per config field: which tensor it was read from, the default kept and why, or the override.</param>
/// <param name="DefaultedFields">
/// JSON paths (e.g. <c>num_heads</c>, <c>encoder.norm_eps</c>) of the fields that neither the weights
/// nor the override determined: their defaults are the reference's, and a caller may want to confirm them.
/// </param>
public sealed record DeducedModel(
    string Kind,
    object Config,
    JsonElement ConfigJson,
    IReadOnlyList<string> Notes,
    IReadOnlyList<string> DefaultedFields);
