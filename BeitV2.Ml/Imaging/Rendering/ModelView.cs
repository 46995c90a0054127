using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Imaging.Rendering;

/// <summary>
/// What the model saw of an image: the resized and cropped pixels an <see cref="EvalTransformPlan"/>
/// describes, in 8 bits (before ToTensor). Identical to <see cref="EvalTransform.CropU8(RgbBuffer)"/>
/// for the transform that made the plan, but driven by the plan, so a renderer only needs the plan
/// the request was served with.
/// </summary>
public static class ModelView
{
    /// <summary>The crop of the resized image, <c>plan.Crop.Width × plan.Crop.Height</c>; parts of the
    /// crop outside the resized image are black (torchvision's padding).</summary>
    /// <exception cref="ArgumentException">The plan was made for an image of another size.</exception>
    public static RgbBuffer Crop(RgbBuffer original, EvalTransformPlan plan)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(plan);
        if (original.Width != plan.OriginalWidth || original.Height != plan.OriginalHeight)
            throw new ArgumentException(
                $"The plan is for a {plan.OriginalWidth}x{plan.OriginalHeight} image, the image is {original.Width}x{original.Height}.",
                nameof(plan));
        var crop = plan.Crop;
        if (crop.Width <= 0 || crop.Height <= 0)
            throw new ArgumentException($"The plan's crop {crop} is empty.", nameof(plan));

        var output = new byte[checked(crop.Width * crop.Height * 3)];
        int x0 = Math.Max(crop.Left, 0), y0 = Math.Max(crop.Top, 0);
        int x1 = Math.Min(crop.Right, plan.ResizedWidth), y1 = Math.Min(crop.Bottom, plan.ResizedHeight);
        if (x1 > x0 && y1 > y0)
        {
            int regionWidth = x1 - x0, regionHeight = y1 - y0;
            var region = PilResize.ResizeRegion(original.Pixels, original.Width, original.Height, 3,
                plan.ResizedWidth, plan.ResizedHeight, x0, y0, regionWidth, regionHeight);
            int rowBytes = regionWidth * 3;
            for (int y = 0; y < regionHeight; y++)
                region.AsSpan(y * rowBytes, rowBytes)
                    .CopyTo(output.AsSpan(((y0 - crop.Top + y) * crop.Width + (x0 - crop.Left)) * 3));
        }
        return new RgbBuffer(output, crop.Width, crop.Height);
    }

    /// <summary>The crop of the resized image, from an ImageSharp image.</summary>
    public static RgbBuffer Crop(Image<Rgb24> original, EvalTransformPlan plan) =>
        Crop(RgbBuffer.FromImage(original), plan);
}
