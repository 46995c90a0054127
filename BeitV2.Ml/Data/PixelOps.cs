using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>Exact pixel operations shared by the training transforms: crops, mirrors, nearest resizes and ToTensor.</summary>
public static class PixelOps
{
    /// <summary>PIL's <c>img.crop(box)</c> for a box inside the image: a copy of the rectangle.</summary>
    public static RgbBuffer Crop(RgbBuffer image, CropBox box)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckInside(box, image.Width, image.Height);
        if (box.Left == 0 && box.Top == 0 && box.Width == image.Width && box.Height == image.Height)
            return image;
        var pixels = new byte[box.Width * box.Height * 3];
        int row = box.Width * 3;
        for (int y = 0; y < box.Height; y++)
            image.Pixels.AsSpan(((box.Top + y) * image.Width + box.Left) * 3, row).CopyTo(pixels.AsSpan(y * row));
        return new RgbBuffer(pixels, box.Width, box.Height);
    }

    /// <summary>Crops a row-major class map of <paramref name="width"/> columns.</summary>
    public static byte[] Crop(byte[] map, int width, int height, CropBox box)
    {
        ArgumentNullException.ThrowIfNull(map);
        CheckInside(box, width, height);
        var result = new byte[box.Width * box.Height];
        for (int y = 0; y < box.Height; y++)
            map.AsSpan((box.Top + y) * width + box.Left, box.Width).CopyTo(result.AsSpan(y * box.Width));
        return result;
    }

    /// <summary>Mirrors an image left–right (torchvision's <c>hflip</c>, PIL's <c>FLIP_LEFT_RIGHT</c>), bit-exact.</summary>
    public static RgbBuffer FlipHorizontal(RgbBuffer image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int w = image.Width;
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (int y = 0; y < image.Height; y++)
        {
            int row = y * w * 3;
            for (int x = 0; x < w; x++)
            {
                int s = row + x * 3, d = row + (w - 1 - x) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return new RgbBuffer(dst, w, image.Height);
    }

    /// <summary>Mirrors a row-major class map left–right.</summary>
    public static byte[] FlipHorizontal(byte[] map, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(map);
        CheckMap(map, width, height);
        var result = new byte[map.Length];
        for (int y = 0; y < height; y++)
        {
            map.AsSpan(y * width, width).CopyTo(result.AsSpan(y * width));
            result.AsSpan(y * width, width).Reverse();
        }
        return result;
    }

    /// <summary>
    /// Nearest-neighbour resize of a class map with torch's legacy <c>mode='nearest'</c> indexing
    /// (<see cref="Imaging.Rendering.ClassMapResizer.NearestSourceIndex"/>); only existing classes can appear.
    /// </summary>
    public static byte[] ResizeNearest(byte[] map, int width, int height, int outWidth, int outHeight)
    {
        ArgumentNullException.ThrowIfNull(map);
        CheckMap(map, width, height);
        if (outWidth == width && outHeight == height) return (byte[])map.Clone();
        var xs = new int[outWidth];
        for (int x = 0; x < outWidth; x++) xs[x] = Imaging.Rendering.ClassMapResizer.NearestSourceIndex(x, width, outWidth);
        var result = new byte[outWidth * outHeight];
        for (int y = 0; y < outHeight; y++)
        {
            int src = Imaging.Rendering.ClassMapResizer.NearestSourceIndex(y, height, outHeight) * width;
            int dst = y * outWidth;
            for (int x = 0; x < outWidth; x++) result[dst + x] = map[src + xs[x]];
        }
        return result;
    }

    /// <summary>
    /// torchvision's <c>ToTensor()</c> (+ <c>Normalize(mean, std)</c> when <paramref name="normalization"/>
    /// is given) of an image into <paramref name="destination"/>, a CHW plane set of
    /// <paramref name="planeWidth"/>×<paramref name="planeHeight"/> with the image at its top-left
    /// corner. The float32 operations and their order are torchvision's (<c>u8 / 255f</c>, then
    /// <c>(v - mean) / std</c>), as in <see cref="EvalTransform.WriteChw"/>. Cells outside the image are
    /// left untouched (zero in a fresh array: mmseg's <c>Pad</c> after <c>Normalize</c>).
    /// </summary>
    public static void WriteChw(RgbBuffer image, PixelNormalization? normalization, Span<float> destination,
        int planeWidth, int planeHeight)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Width > planeWidth || image.Height > planeHeight)
            throw new ArgumentException($"A {image.Width}x{image.Height} image does not fit a {planeWidth}x{planeHeight} plane.");
        int plane = planeWidth * planeHeight;
        if (destination.Length != 3 * plane)
            throw new ArgumentException($"Expected {3 * plane} floats, got {destination.Length}.", nameof(destination));
        float[]? mean = normalization?.MeanF32();
        float[]? std = normalization?.StdF32();
        var pixels = image.Pixels;
        for (int c = 0; c < 3; c++)
        {
            var dst = destination.Slice(c * plane, plane);
            for (int y = 0; y < image.Height; y++)
            {
                int src = y * image.Width * 3 + c, d = y * planeWidth;
                for (int x = 0; x < image.Width; x++, src += 3)
                {
                    float v = pixels[src] / 255f;
                    dst[d + x] = mean is null ? v : (v - mean[c]) / std![c];
                }
            }
        }
    }

    /// <summary>ToTensor (+ Normalize) of a whole image as a new CHW array.</summary>
    public static float[] ToChw(RgbBuffer image, PixelNormalization? normalization)
    {
        ArgumentNullException.ThrowIfNull(image);
        var data = new float[3 * image.Width * image.Height];
        WriteChw(image, normalization, data, image.Width, image.Height);
        return data;
    }

    private static void CheckInside(CropBox box, int width, int height)
    {
        if (box.Left < 0 || box.Top < 0 || box.Width <= 0 || box.Height <= 0 || box.Right > width || box.Bottom > height)
            throw new ArgumentOutOfRangeException(nameof(box), box, $"The crop must lie inside the {width}x{height} image.");
    }

    private static void CheckMap(byte[] map, int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (map.LongLength != (long)width * height)
            throw new ArgumentException($"Expected {width}x{height} class indices, got {map.LongLength}.", nameof(map));
    }
}
