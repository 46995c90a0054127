namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>
/// Nearest-neighbour resizing of class maps (row-major <c>int</c> arrays, one class index per
/// pixel) and the mapping of a mask predicted on the model's input back onto the original image.
/// </summary>
/// <remarks>
/// <para>The convention is torch's <c>F.interpolate(mode='nearest')</c> without a scale factor:
/// output index d reads input index <c>min(floor(d · s), in - 1)</c> with <c>s = in / out</c>,
/// evaluated like ATen does, in float32 (<c>s = (float)in / out</c>, then <c>floorf(d · s)</c>), with
/// its shortcuts for equal sizes (identity) and exact doubling (<c>d &gt;&gt; 1</c>). The float32
/// arithmetic matters: it is not always the exact rational floor(d·in/out) (resizing 14 → 46,
/// output 23 reads input 6, since 23 · 0.3043478f rounds to 6.9999995f, not 7), and reproducing it
/// is what makes the results identical to torch's. This is the "legacy" nearest (pixel corners,
/// not centres, aligned, so the output is shifted by up to half an input pixel towards the
/// origin), not <c>nearest-exact</c>.</para>
/// <para>Class maps are never interpolated any other way: a nearest resize can only produce
/// classes that exist in the input.</para>
/// </remarks>
public static class ClassMapResizer
{
    /// <summary>
    /// The input index torch's nearest interpolation reads for output index <paramref name="dst"/>
    /// when resizing <paramref name="inSize"/> → <paramref name="outSize"/> (ATen's <c>nearest_idx</c>).
    /// </summary>
    public static int NearestSourceIndex(int dst, int inSize, int outSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outSize);
        if ((uint)dst >= (uint)outSize) throw new ArgumentOutOfRangeException(nameof(dst), dst, $"0 <= dst < {outSize}");
        return SourceIndex(dst, inSize, outSize);
    }

    /// <summary>
    /// Resizes a <paramref name="width"/>×<paramref name="height"/> class map to
    /// <paramref name="outWidth"/>×<paramref name="outHeight"/> like
    /// <c>F.interpolate(map[None, None].float(), size=(outHeight, outWidth), mode='nearest')</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The map does not hold width·height values.</exception>
    public static int[] ResizeNearest(ReadOnlySpan<int> source, int width, int height, int outWidth, int outHeight)
    {
        CheckMap(source.Length, width, height, nameof(source));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);

        var xs = new int[outWidth];
        for (int x = 0; x < outWidth; x++) xs[x] = SourceIndex(x, width, outWidth);
        var result = new int[checked(outWidth * outHeight)];
        for (int y = 0; y < outHeight; y++)
        {
            var srcRow = source.Slice(SourceIndex(y, height, outHeight) * width, width);
            var dstRow = result.AsSpan(y * outWidth, outWidth);
            for (int x = 0; x < outWidth; x++) dstRow[x] = srcRow[xs[x]];
        }
        return result;
    }

    /// <summary>
    /// For the simple segmentation path where the whole image was resized (squashed, aspect ratio
    /// not kept) to the model input: the mask, at the model's resolution or any other, covers the
    /// whole original, so it is just resized nearest to
    /// <paramref name="originalWidth"/>×<paramref name="originalHeight"/>.
    /// </summary>
    public static int[] FromFullImageResize(ReadOnlySpan<int> mask, int maskWidth, int maskHeight,
        int originalWidth, int originalHeight) =>
        ResizeNearest(mask, maskWidth, maskHeight, originalWidth, originalHeight);

    /// <summary>
    /// Maps a mask predicted on the evaluation transform's view (shorter-side resize, then centre
    /// crop) back onto the original image, as a class map of
    /// <see cref="EvalTransformPlan.OriginalWidth"/>×<see cref="EvalTransformPlan.OriginalHeight"/>.
    /// </summary>
    /// <remarks>
    /// The geometry, in three steps, each an exact torch operation:
    /// <list type="number">
    /// <item>the mask (any resolution, e.g. the crop size or a quarter of it) is resized nearest to
    /// the crop box's size, <c>plan.Crop.Width × plan.Crop.Height</c>;</item>
    /// <item>it is pasted at (<c>Crop.Left</c>, <c>Crop.Top</c>) into a canvas the size of the resized
    /// image, <c>ResizedWidth × ResizedHeight</c>, filled with <paramref name="ignoreClass"/>. Parts
    /// of the crop that fall outside the resized image (torchvision's zero padding of small images)
    /// are dropped; the strips the crop cut off (left/right or top/bottom) keep
    /// <paramref name="ignoreClass"/>;</item>
    /// <item>the canvas is resized nearest to the original size, undoing the shorter-side resize.</item>
    /// </list>
    /// Only the output is allocated: each output pixel follows the two index maps directly.
    /// With the default crop_pct 224/256 the crop leaves 16 of the 256 resized pixels on each end of
    /// the shorter side (1/16 of the side), plus the longer side's surplus, to
    /// <paramref name="ignoreClass"/>.
    /// </remarks>
    /// <param name="mask">The predicted classes, row-major.</param>
    /// <param name="maskWidth">Mask width.</param>
    /// <param name="maskHeight">Mask height.</param>
    /// <param name="plan">The geometry the model input was made with (<see cref="EvalTransform.Plan"/>).</param>
    /// <param name="ignoreClass">Class of the original pixels the model did not see (0 by default;
    /// mmsegmentation's ignore index is 255).</param>
    public static int[] FromCenterCrop(ReadOnlySpan<int> mask, int maskWidth, int maskHeight,
        EvalTransformPlan plan, int ignoreClass = 0)
    {
        CheckMap(mask.Length, maskWidth, maskHeight, nameof(mask));
        ArgumentNullException.ThrowIfNull(plan);
        var crop = plan.Crop;
        if (crop.Width <= 0 || crop.Height <= 0)
            throw new ArgumentException($"The plan's crop {crop} is empty.", nameof(plan));

        var xs = CropIndexMap(plan.OriginalWidth, plan.ResizedWidth, crop.Left, crop.Width, maskWidth);
        var ys = CropIndexMap(plan.OriginalHeight, plan.ResizedHeight, crop.Top, crop.Height, maskHeight);
        int width = plan.OriginalWidth;
        var result = new int[checked(width * plan.OriginalHeight)];
        for (int y = 0; y < ys.Length; y++)
        {
            var dstRow = result.AsSpan(y * width, width);
            if (ys[y] < 0)
            {
                dstRow.Fill(ignoreClass);
                continue;
            }
            var srcRow = mask.Slice(ys[y] * maskWidth, maskWidth);
            for (int x = 0; x < width; x++) dstRow[x] = xs[x] < 0 ? ignoreClass : srcRow[xs[x]];
        }
        return result;
    }

    // For each original index along one axis: the mask index it shows, or -1 outside the crop.
    private static int[] CropIndexMap(int originalSize, int resizedSize, int cropStart, int cropSize, int maskSize)
    {
        var map = new int[originalSize];
        for (int i = 0; i < originalSize; i++)
        {
            int inCrop = SourceIndex(i, resizedSize, originalSize) - cropStart;
            map[i] = (uint)inCrop < (uint)cropSize ? SourceIndex(inCrop, maskSize, cropSize) : -1;
        }
        return map;
    }

    // ATen's nearest_idx / nearest_neighbor_compute_source_index (UpSample.h), float32 arithmetic.
    private static int SourceIndex(int dst, int inSize, int outSize)
    {
        if (outSize == inSize) return dst;
        if (outSize == 2 * inSize) return dst >> 1;
        float scale = (float)inSize / outSize;
        return (int)Math.Min((long)MathF.Floor(dst * scale), inSize - 1);
    }

    private static void CheckMap(int length, int width, int height, string paramName)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width, paramName + "Width");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height, paramName + "Height");
        if (length != (long)width * height)
            throw new ArgumentException($"Expected {width}x{height} = {(long)width * height} class indices, got {length}.", paramName);
    }
}
