using System.Collections.Concurrent;
using BeitV2.Ml.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Tests.Api;

/// <summary>Images for the API tests: the shared photo fixtures and small generated ones.</summary>
internal static class TestImages
{
    private static readonly ConcurrentDictionary<string, byte[]> Files = new();

    /// <summary>A photo from the fixture folder (coffee.png, rocket.jpg, chelsea.png, truncated.jpg, ...).</summary>
    public static byte[] Fixture(string name) => Files.GetOrAdd(name, n => File.ReadAllBytes(Path.Combine(FixturePaths.ImagesDir, n)));

    public static byte[] Coffee => Fixture("coffee.png");
    public static byte[] Rocket => Fixture("rocket.jpg");
    public static byte[] Chelsea => Fixture("chelsea.png");

    /// <summary>A small smooth-gradient PNG, different per seed.</summary>
    public static byte[] Png(int width, int height, int seed = 0)
    {
        using var image = new Image<Rgb24>(width, height);
        for (var y = 0; y < height; y++)
        for (var x = 0; x < width; x++)
            image[x, y] = new Rgb24((byte)(x * 255 / Math.Max(1, width - 1)), (byte)(y * 255 / Math.Max(1, height - 1)), (byte)(seed * 53 + x * y));
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    /// <summary>The size the service sees (it decodes with <see cref="ImageDecoder"/>, EXIF orientation applied).</summary>
    public static (int Width, int Height) DecodedSize(byte[] bytes)
    {
        using var image = ImageDecoder.Default.Decode(bytes);
        return (image.Width, image.Height);
    }

    public static string ContentType(byte[] bytes) =>
        bytes.Length >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF ? "image/jpeg"
        : bytes.Length >= 2 && bytes[0] == (byte)'B' && bytes[1] == (byte)'M' ? "image/bmp"
        : "image/png";
}
