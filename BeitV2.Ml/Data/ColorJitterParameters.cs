namespace BeitV2.Ml.Data;

/// <summary>One draw of <see cref="ColorJitter"/>: the order of the adjustments and their factors (null = disabled).</summary>
/// <param name="Order">The adjustments in the order they are applied.</param>
/// <param name="Brightness">Brightness factor.</param>
/// <param name="Contrast">Contrast factor.</param>
/// <param name="Saturation">Saturation factor.</param>
public sealed record ColorJitterParameters(
    IReadOnlyList<ColorAdjustment> Order, double? Brightness, double? Contrast, double? Saturation);
