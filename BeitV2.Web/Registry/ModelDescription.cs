using BeitV2.Ml.Catalog;
using System.Text.Json;

namespace BeitV2.Web.Registry;

/// <summary>The API-facing shape of a model (kind, architecture, sizes) derived from its package manifest.</summary>
public static class ModelDescription
{
    public sealed record Shape(string Kind, string Architecture, int ImageSize, int PatchSize, int EmbedDim, int Depth, int? CodebookSize, int? Classes);

    /// <exception cref="Ml.Checkpoints.CheckpointException">the kind is not in the catalogue or has no API kind.</exception>
    /// <exception cref="InvalidDataException">the config is not one of that kind.</exception>
    public static Shape Describe(string packageKind, JsonElement config)
    {
        var entry = ModelCatalog.Default[packageKind];
        var s = entry.Describe(entry.ReadConfig(config));
        return new Shape(ApiModelKinds.Of(packageKind, s), s.Architecture, s.ImageSize, s.PatchSize, s.EmbedDim, s.Depth, s.CodebookSize, s.Classes);
    }
}
