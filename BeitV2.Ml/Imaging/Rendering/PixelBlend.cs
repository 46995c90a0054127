using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>
/// The one blending rule of the renderers, per channel:
/// <c>round_half_away((1 - alpha) · photo + alpha · colour)</c> in double precision.
/// </summary>
internal static class PixelBlend
{
    public static void CheckAlpha(double alpha, string paramName)
    {
        if (!(alpha >= 0 && alpha <= 1))
            throw new ArgumentOutOfRangeException(paramName, alpha, "alpha must lie in [0, 1].");
    }

    public static byte Channel(byte photo, byte colour, double alpha) =>
        (byte)Math.Round((1 - alpha) * photo + alpha * colour, MidpointRounding.AwayFromZero);

    public static Rgb24 Pixel(Rgb24 photo, Rgb24 colour, double alpha) => new(
        Channel(photo.R, colour.R, alpha),
        Channel(photo.G, colour.G, alpha),
        Channel(photo.B, colour.B, alpha));
}
