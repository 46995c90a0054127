namespace BeitV2.Ml.Catalog;

/// <summary>The size of a model as a person reads it: what a model list shows beside the kind.</summary>
/// <param name="Architecture">The family's name, e.g. <c>beit-vit</c>, <c>vqkd</c>, <c>beit-upernet</c>.</param>
/// <param name="ImageSize">Input resolution in pixels (square).</param>
/// <param name="CodebookSize">Visual token vocabulary (tokenizers and MIM models); null for the others.</param>
/// <param name="Classes">Classes the model outputs; null when it has no classification or segmentation head.</param>
public sealed record ModelShape(string Architecture, int ImageSize, int PatchSize, int EmbedDim, int Depth, int? CodebookSize, int? Classes);
