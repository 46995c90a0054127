namespace BeitV2.Web.Evaluation;

/// <summary>
/// A rendered <see cref="BeitV2.Ml.Imaging.Rendering.SegmentationGrid"/> (<c>evaluate --grid</c>): the PNG, how many scenes
/// it shows, the side of a cell in pixels, and the legend's classes with their colours (#RRGGBB), left to right.
/// </summary>
public sealed record SegmentationGridPicture(byte[] Png, int Scenes, int CellSize, IReadOnlyList<(string Name, string Colour)> Legend);
