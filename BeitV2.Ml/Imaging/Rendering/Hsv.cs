using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>HSV → 8-bit RGB, the textbook six-sector formula, rounded half away from zero.</summary>
internal static class Hsv
{
    /// <param name="hue">Hue in turns; any value, only the fractional part counts (0 = red, 1/3 = green).</param>
    /// <param name="saturation">0..1.</param>
    /// <param name="value">0..1.</param>
    public static Rgb24 ToRgb(double hue, double saturation, double value)
    {
        double h = hue - Math.Floor(hue);
        double scaled = h * 6.0;
        int sector = Math.Min((int)scaled, 5);
        double f = scaled - sector;
        double p = value * (1 - saturation);
        double q = value * (1 - saturation * f);
        double t = value * (1 - saturation * (1 - f));
        var (r, g, b) = sector switch
        {
            0 => (value, t, p),
            1 => (q, value, p),
            2 => (p, value, t),
            3 => (p, q, value),
            4 => (t, p, value),
            _ => (value, p, q),
        };
        return new Rgb24(ToByte(r), ToByte(g), ToByte(b));
    }

    private static byte ToByte(double unit) =>
        (byte)Math.Clamp(Math.Round(unit * 255.0, MidpointRounding.AwayFromZero), 0, 255);
}
