using System.Buffers;
using System.Runtime.InteropServices;
using BeitV2.Ml.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Inference;

/// <summary>How a served model wants its images.</summary>
public enum InputGeometry
{
    /// <summary>The evaluation transform: shorter side to size/crop_pct, centre crop (classification, tokens).</summary>
    CenterCrop,
    /// <summary>The whole image resized to size×size (segmentation: the mask must cover the whole image).</summary>
    FullResize,
}

/// <summary>The pixel layout a served model consumes, and the conversion of one image to it.</summary>
public sealed record ModelInput(int Size, InputGeometry Geometry, PixelNormalization? Normalization)
{
    /// <summary>Floats per image: 3·Size².</summary>
    public int Length => 3 * Size * Size;

    /// <summary>
    /// CHW float32 pixels (the first <see cref="Length"/> floats): normalised, or in [0, 1] when
    /// <see cref="Normalization"/> is null. The array is rented from <see cref="ArrayPool{T}.Shared"/> (it is
    /// larger than <see cref="Length"/>); whoever consumes it returns it there (the batching worker does).
    /// </summary>
    /// <remarks>
    /// Serving takes the pixels straight from the decoded image's memory and rents its float array, so a
    /// request no longer allocates ~2 MB on the large-object heap (a gen-2 collection every few requests).
    /// </remarks>
    public float[] Prepare(Image<Rgb24> image, out EvalTransformPlan? plan)
    {
        var transform = new EvalTransform(Size, normalization: Normalization ?? PixelNormalization.ImageNet);
        RgbBuffer? copy = null;
        ReadOnlySpan<byte> pixels;
        if (image.DangerousTryGetSinglePixelMemory(out var memory)) pixels = MemoryMarshal.AsBytes(memory.Span);
        else pixels = (copy = RgbBuffer.FromImage(image)).Pixels;   // an image in several memory blocks: copy once

        RgbBuffer view;
        if (Geometry == InputGeometry.CenterCrop)
        {
            plan = transform.Plan(image.Width, image.Height);
            view = transform.CropU8(pixels, image.Width, image.Height);
        }
        else
        {
            plan = null;
            view = image.Width == Size && image.Height == Size
                ? copy ?? RgbBuffer.FromImage(image)
                : new RgbBuffer(PilResize.Resize(pixels, image.Width, image.Height, 3, Size, Size), Size, Size);
        }
        var data = ArrayPool<float>.Shared.Rent(Length);
        transform.WriteChw(view, data.AsSpan(0, Length), normalize: Normalization is not null);
        return data;
    }
}
