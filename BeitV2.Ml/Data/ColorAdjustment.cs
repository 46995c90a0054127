namespace BeitV2.Ml.Data;

/// <summary>One of the adjustments <see cref="ColorJitter"/> applies.</summary>
public enum ColorAdjustment
{
    /// <summary>Blend with black.</summary>
    Brightness,

    /// <summary>Blend with the mean grey.</summary>
    Contrast,

    /// <summary>Blend with the greyscale image.</summary>
    Saturation,
}
