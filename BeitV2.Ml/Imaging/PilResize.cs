using System.Buffers;
namespace BeitV2.Ml.Imaging;

/// <summary>
/// Pillow's <c>Image.resize(size, Image.BICUBIC)</c> for 8-bit images, reproduced bit for bit
/// (libImaging/Resample.c). The reference transform resizes with Pillow, so any other bicubic
/// implementation (ImageSharp's, OpenCV's, torch's) moves pixels by a few levels; being exact here
/// makes the C# model input identical to the Python one for lossless inputs.
/// </summary>
/// <remarks>
/// Pillow's algorithm, followed step by step:
/// <list type="number">
/// <item>Separable convolution with the bicubic kernel (a = -0.5, support 2), stretched by the
/// scale factor when downscaling so that it also antialiases.</item>
/// <item>Weights computed in double, normalised to sum 1 per output pixel, then converted to
/// fixed point with 22 fractional bits, rounding half away from zero.</item>
/// <item>Horizontal pass first into an 8-bit intermediate, then the vertical pass. Each
/// accumulator starts at 0.5 (1 &lt;&lt; 21) and is shifted and clamped to 0..255.</item>
/// <item>A pass whose size does not change is skipped.</item>
/// </list>
/// Channels are filtered independently, which is Pillow's behaviour for L, RGB and CMYK. (Pillow
/// premultiplies RGBA/LA by alpha first; that is not done here.)
/// Every output pixel depends only on its own coefficients, so computing a sub-rectangle of the
/// output (<see cref="ResizeRegion"/>) gives exactly the pixels of the full resize. The evaluation
/// transform uses that to resize only the centre crop, which also keeps memory bounded for
/// extreme aspect ratios whose full resize would be huge.
/// </remarks>
public static class PilResize
{
    // 32-bit accumulator: 8 bits for the pixel value, 2 bits of headroom for negative lobes and
    // overshoot, the rest for the fraction.
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>The default bound of the intermediate buffer of <see cref="ResizeRegion"/> (16 MiB).</summary>
    public const long DefaultMaxIntermediateBytes = 16L * 1024 * 1024;

    // Pillow's bicubic support radius (filter "support" in Resample.c).
    private const double BicubicSupport = 2.0;

    /// <summary>Pillow's bicubic kernel with a = -0.5 (Keys' cubic). The operation order matches Resample.c.</summary>
    public static double Bicubic(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /// <summary>Resizes a whole interleaved 8-bit image.</summary>
    /// <param name="source">Row-major interleaved pixels, <paramref name="width"/>·<paramref name="height"/>·<paramref name="channels"/> bytes.</param>
    /// <param name="width">Source width.</param>
    /// <param name="height">Source height.</param>
    /// <param name="channels">Interleaved channels per pixel (1 to 4).</param>
    /// <param name="outWidth">Target width.</param>
    /// <param name="outHeight">Target height.</param>
    /// <returns>The resized image, <paramref name="outWidth"/>·<paramref name="outHeight"/>·<paramref name="channels"/> bytes.</returns>
    public static byte[] Resize(ReadOnlySpan<byte> source, int width, int height, int channels, int outWidth, int outHeight) =>
        ResizeRegion(source, width, height, channels, outWidth, outHeight, 0, 0, outWidth, outHeight);

    /// <summary>Resizes an RGB buffer.</summary>
    public static RgbBuffer Resize(RgbBuffer source, int outWidth, int outHeight)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new RgbBuffer(Resize(source.Pixels, source.Width, source.Height, 3, outWidth, outHeight), outWidth, outHeight);
    }

    /// <summary>
    /// Computes only the rectangle [regionX, regionX+regionWidth) × [regionY, regionY+regionHeight)
    /// of the <paramref name="outWidth"/>×<paramref name="outHeight"/> resize. The result equals the
    /// same rectangle cut from <see cref="Resize(ReadOnlySpan{byte},int,int,int,int,int)"/>.
    /// </summary>
    /// <returns>regionWidth·regionHeight·channels bytes, row-major interleaved.</returns>
    /// <param name="maxIntermediateBytes">Largest horizontal-pass intermediate; a region that needs more is computed
    /// in bands of output rows (identical pixels, since each output row depends only on its own coefficients). A
    /// tall thin image resized to a square would otherwise need an intermediate of height × outWidth, which overflows.</param>
    public static byte[] ResizeRegion(ReadOnlySpan<byte> source, int width, int height, int channels,
        int outWidth, int outHeight, int regionX, int regionY, int regionWidth, int regionHeight,
        long maxIntermediateBytes = DefaultMaxIntermediateBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        if (channels is < 1 or > 4) throw new ArgumentOutOfRangeException(nameof(channels), channels, "1 to 4 channels");
        if ((long)width * height * channels != source.Length)
            throw new ArgumentException($"Expected {width}x{height}x{channels} bytes, got {source.Length}.", nameof(source));
        if (regionX < 0 || regionY < 0 || regionWidth <= 0 || regionHeight <= 0
            || regionX > outWidth - regionWidth || regionY > outHeight - regionHeight)
            throw new ArgumentOutOfRangeException(nameof(regionX),
                $"Region ({regionX},{regionY},{regionWidth}x{regionHeight}) is not inside {outWidth}x{outHeight}.");

        bool needHorizontal = outWidth != width;
        bool needVertical = outHeight != height;

        // Split into bands of output rows while the intermediate would be too large (down to a single output row),
        // judged before computing the coefficients, whose size also grows with the rows each output reads.
        if (needVertical && regionHeight > 1 && EstimatedRows(height, outHeight, regionHeight) * regionWidth * channels > maxIntermediateBytes)
        {
            var banded = new byte[checked(regionWidth * regionHeight * channels)];
            int top = regionHeight / 2;
            ResizeRegion(source, width, height, channels, outWidth, outHeight, regionX, regionY, regionWidth, top, maxIntermediateBytes)
                .CopyTo(banded, 0);
            ResizeRegion(source, width, height, channels, outWidth, outHeight, regionX, regionY + top, regionWidth, regionHeight - top, maxIntermediateBytes)
                .CopyTo(banded, (long)top * regionWidth * channels);
            return banded;
        }

        // Source rows the vertical pass will read (all region rows if there is no vertical pass).
        Coefficients? vertical = needVertical ? Coefficients.Compute(height, outHeight, regionY, regionHeight) : null;
        int firstRow = vertical?.FirstInput ?? regionY;
        int rowCount = vertical is null ? regionHeight : vertical.InputEnd - vertical.FirstInput;

        // Horizontal pass (or a plain column cut) over just those rows, into an 8-bit intermediate
        // exactly as Pillow's imTemp.
        // When a vertical pass follows, the intermediate is scratch: rented (a 640×480 upload's is ~290 KB,
        // which would otherwise be a large-object-heap allocation per request).
        int tempLength = checked(rowCount * regionWidth * channels);
        var temp = vertical is null ? new byte[tempLength] : ArrayPool<byte>.Shared.Rent(tempLength);
        try
        {
            if (needHorizontal)
            {
                var horizontal = Coefficients.Compute(width, outWidth, regionX, regionWidth);
                ResampleHorizontal(source, width, channels, firstRow, rowCount, horizontal, temp);
            }
            else
            {
                for (int y = 0; y < rowCount; y++)
                    source.Slice(((firstRow + y) * width + regionX) * channels, regionWidth * channels)
                        .CopyTo(temp.AsSpan(y * regionWidth * channels));
            }

            if (vertical is null) return temp;

            var result = new byte[checked(regionWidth * regionHeight * channels)];
            ResampleVertical(temp, regionWidth * channels, vertical, result);
            return result;
        }
        finally
        {
            if (vertical is not null) ArrayPool<byte>.Shared.Return(temp);
        }
    }

    // An upper estimate of the source rows `count` consecutive output rows read: their span plus the kernel on both sides.
    private static long EstimatedRows(int inSize, int outSize, int count)
    {
        double scale = (double)inSize / outSize;
        double support = BicubicSupport * Math.Max(scale, 1.0);
        return (long)Math.Min(inSize, Math.Ceiling(count * scale + 2 * support + 2));
    }

    private static void ResampleHorizontal(ReadOnlySpan<byte> source, int width, int channels,
        int firstRow, int rowCount, Coefficients k, byte[] target)
    {
        int outCount = k.Count;
        if (channels == 3)
        {
            ResampleHorizontalRgb(source, width, firstRow, rowCount, k, target);
            return;
        }
        for (int y = 0; y < rowCount; y++)
        {
            var row = source.Slice(checked((firstRow + y) * width * channels), width * channels);
            int dst = y * outCount * channels;
            for (int xx = 0; xx < outCount; xx++)
            {
                int xmin = k.Start[xx];
                int taps = k.Taps[xx];
                int w0 = xx * k.Stride;
                for (int c = 0; c < channels; c++)
                {
                    int acc = 1 << (PrecisionBits - 1);
                    int src = xmin * channels + c;
                    for (int x = 0; x < taps; x++, src += channels)
                        acc += row[src] * k.Weights[w0 + x];
                    target[dst++] = Clip8(acc);
                }
            }
        }
    }

    /// <summary>
    /// The 3-channel case of <see cref="ResampleHorizontal"/> with the channels in one pass over the taps: the
    /// same integer sums (so the same bytes), a third of the loop overhead. Every upload takes this path.
    /// </summary>
    private static void ResampleHorizontalRgb(ReadOnlySpan<byte> source, int width, int firstRow, int rowCount, Coefficients k, byte[] target)
    {
        int outCount = k.Count;
        var weights = k.Weights.AsSpan();
        var output = target.AsSpan();
        for (int y = 0; y < rowCount; y++)
        {
            var row = source.Slice(checked((firstRow + y) * width * 3), width * 3);
            int dst = y * outCount * 3;
            for (int xx = 0; xx < outCount; xx++)
            {
                int taps = k.Taps[xx];
                var w = weights.Slice(xx * k.Stride, taps);
                var px = row.Slice(k.Start[xx] * 3, taps * 3);
                int r = 1 << (PrecisionBits - 1), g = r, b = r;
                for (int x = 0, src = 0; x < w.Length; x++, src += 3)
                {
                    int wx = w[x];
                    r += px[src] * wx;
                    g += px[src + 1] * wx;
                    b += px[src + 2] * wx;
                }
                output[dst] = Clip8(r);
                output[dst + 1] = Clip8(g);
                output[dst + 2] = Clip8(b);
                dst += 3;
            }
        }
    }

    // The intermediate rows start at k.FirstInput (Pillow shifts its vertical bounds the same way).
    private static void ResampleVertical(byte[] temp, int rowStride, Coefficients k, byte[] target)
    {
        for (int yy = 0; yy < k.Count; yy++)
        {
            int ymin = k.Start[yy] - k.FirstInput;
            int taps = k.Taps[yy];
            int w0 = yy * k.Stride;
            int dst = yy * rowStride;
            for (int i = 0; i < rowStride; i++)
            {
                int acc = 1 << (PrecisionBits - 1);
                int src = ymin * rowStride + i;
                for (int y = 0; y < taps; y++, src += rowStride)
                    acc += temp[src] * k.Weights[w0 + y];
                target[dst + i] = Clip8(acc);
            }
        }
    }

    // Pillow's clip8: drop the fraction (arithmetic shift, so negatives stay negative) and clamp.
    private static byte Clip8(int acc)
    {
        int v = acc >> PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    /// <summary>Fixed-point filter taps for a contiguous range of output positions along one axis.</summary>
    private sealed class Coefficients
    {
        private Coefficients(int count, int stride)
        {
            Count = count;
            Stride = stride;
            Start = new int[count];
            Taps = new int[count];
            Weights = new int[checked(count * stride)];
        }

        public int Count { get; }
        public int Stride { get; }
        public int[] Start { get; }
        public int[] Taps { get; }
        public int[] Weights { get; }
        public int FirstInput { get; private set; }
        public int InputEnd { get; private set; }

        // Pillow's precompute_coeffs + normalize_coeffs_8bpc, for outputs [outStart, outStart+count).
        public static Coefficients Compute(int inSize, int outSize, int outStart, int count)
        {
            double scale = (double)inSize / outSize;
            double filterScale = Math.Max(scale, 1.0);
            double support = BicubicSupport * filterScale;
            int ksize = (int)Math.Ceiling(support) * 2 + 1;
            var k = new Coefficients(count, ksize);
            var w = new double[ksize];
            int firstInput = int.MaxValue, inputEnd = 0;

            for (int i = 0; i < count; i++)
            {
                int xx = outStart + i;
                double center = (xx + 0.5) * scale;
                double ss = 1.0 / filterScale;
                // "Round the value" in Pillow: a truncating cast of value + 0.5.
                int xmin = (int)(center - support + 0.5);
                if (xmin < 0) xmin = 0;
                int xmax = (int)(center + support + 0.5);
                if (xmax > inSize) xmax = inSize;
                xmax -= xmin;

                double ww = 0.0;
                for (int x = 0; x < xmax; x++)
                {
                    double v = Bicubic((x + xmin - center + 0.5) * ss);
                    w[x] = v;
                    ww += v;
                }
                for (int x = 0; x < xmax; x++)
                {
                    if (ww != 0.0) w[x] /= ww;
                    // Round half away from zero into 22-bit fixed point, like normalize_coeffs_8bpc.
                    double scaled = w[x] * (1 << PrecisionBits);
                    k.Weights[i * ksize + x] = w[x] < 0 ? (int)(-0.5 + scaled) : (int)(0.5 + scaled);
                }

                k.Start[i] = xmin;
                k.Taps[i] = xmax;
                firstInput = Math.Min(firstInput, xmin);
                inputEnd = Math.Max(inputEnd, xmin + xmax);
            }

            k.FirstInput = firstInput;
            k.InputEnd = inputEnd;
            return k;
        }
    }
}
