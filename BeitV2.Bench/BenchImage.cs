using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Bench;

/// <summary>The image every request sends: a file, or a generated photo-like 640×480 JPEG (smooth colour fields plus noise).</summary>
public sealed record BenchImage(byte[] Bytes, string ContentType, int Width, int Height, string Description)
{
    public static BenchImage Load(string? path)
    {
        if (path is null) return Generate(640, 480);
        var bytes = File.ReadAllBytes(path);
        var info = Image.Identify(bytes) ?? throw new InvalidDataException($"{path} is not an image ImageSharp can read.");
        var type = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".png" => "image/png",
            ".webp" => "image/webp",
            ".bmp" => "image/bmp",
            ".gif" => "image/gif",
            _ => "image/jpeg",
        };
        return new BenchImage(bytes, type, info.Width, info.Height, $"{Path.GetFileName(path)} ({info.Width}×{info.Height}, {bytes.Length / 1024.0:0.#} KiB)");
    }

    public static BenchImage Generate(int width, int height)
    {
        var random = new Random(12345);
        using var image = new Image<Rgb24>(width, height);
        for (var y = 0; y < height; y++)
        for (var x = 0; x < width; x++)
        {
            double u = (double)x / width, v = (double)y / height;
            int Channel(double f) => Math.Clamp((int)(f * 255) + random.Next(-12, 13), 0, 255);
            image[x, y] = new Rgb24(
                (byte)Channel(0.5 + 0.5 * Math.Sin(6 * u + 2 * v)),
                (byte)Channel(0.5 + 0.5 * Math.Cos(4 * v - 3 * u * v)),
                (byte)Channel(0.5 + 0.4 * Math.Sin(9 * (u - 0.5) * (v - 0.5) + 1)));
        }
        using var ms = new MemoryStream();
        image.SaveAsJpeg(ms, new JpegEncoder { Quality = 90 });
        var bytes = ms.ToArray();
        return new BenchImage(bytes, "image/jpeg", width, height, $"generated {width}×{height} JPEG (quality 90, {bytes.Length / 1024.0:0.#} KiB)");
    }
}
