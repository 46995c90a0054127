using System.Buffers;
using System.Runtime.InteropServices;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Inference;

/// <summary>The conversion of one decoded image to a served model's input, as its manifest's <see cref="ModelPreprocessing"/> says.</summary>
public sealed class ModelInput
{
    private readonly EvalTransform transform;
    private readonly bool centreCrop;

    public ModelInput(ModelPreprocessing preprocessing)
    {
        Preprocessing = preprocessing;
        centreCrop = preprocessing.CropMode == ModelPreprocessing.CenterCrop;
        transform = new EvalTransform(preprocessing.InputSize, preprocessing.CropPct, preprocessing.Normalization);
    }

    public ModelPreprocessing Preprocessing { get; }

    /// <summary>Side of the square input.</summary>
    public int Size => Preprocessing.InputSize;

    /// <summary>Floats per image: 3·Size².</summary>
    public int Length => 3 * Size * Size;

    /// <summary>
    /// CHW float32 pixels (the first <see cref="Length"/> floats), mapped with the model's mean and std: the only
    /// normalisation they get. The array is rented from <see cref="ArrayPool{T}.Shared"/> (it is larger than
    /// <see cref="Length"/>); whoever consumes it returns it there (the batching worker does).
    /// </summary>
    /// <param name="plan">the resize and crop of a centre-cropping model; null for a full resize.</param>
    /// <remarks>
    /// Serving takes the pixels straight from the decoded image's memory and rents its float array, so a
    /// request no longer allocates ~2 MB on the large-object heap (a gen-2 collection every few requests).
    /// </remarks>
    public float[] Prepare(Image<Rgb24> image, out EvalTransformPlan? plan)
    {
        RgbBuffer? copy = null;
        ReadOnlySpan<byte> pixels;
        if (image.DangerousTryGetSinglePixelMemory(out var memory)) pixels = MemoryMarshal.AsBytes(memory.Span);
        else pixels = (copy = RgbBuffer.FromImage(image)).Pixels;   // an image in several memory blocks: copy once

        RgbBuffer view;
        if (centreCrop)
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
        transform.WriteChw(view, data.AsSpan(0, Length));
        return data;
    }
}
