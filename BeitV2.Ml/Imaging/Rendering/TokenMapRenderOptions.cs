using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>How <see cref="TokenMapRenderer"/> draws a token map. No legend or text is drawn.</summary>
public sealed record TokenMapRenderOptions
{
    /// <summary>The defaults: 45 % tint, ×2 nearest upscale, white grid lines.</summary>
    public static TokenMapRenderOptions Default { get; } = new();

    /// <summary>Weight of the token colour over the photo, 0 (photo only) to 1 (colour only).</summary>
    public double Alpha { get; init; } = 0.45;

    /// <summary>Integer nearest-neighbour upscale of the model's view (1 to 8), for legibility.</summary>
    public int Scale { get; init; } = 2;

    /// <summary>Whether 1-pixel lines are drawn on the patch boundaries (inside the picture; no outer frame).</summary>
    public bool GridLines { get; init; } = true;

    /// <summary>Colour of the grid lines (opaque).</summary>
    public Rgb24 GridColor { get; init; } = new(255, 255, 255);

    internal TokenMapRenderOptions Validate()
    {
        PixelBlend.CheckAlpha(Alpha, nameof(Alpha));
        if (Scale is < 1 or > 8)
            throw new ArgumentOutOfRangeException(nameof(Scale), Scale, "Scale must be between 1 and 8.");
        return this;
    }
}
