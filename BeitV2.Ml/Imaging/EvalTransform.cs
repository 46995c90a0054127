using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Imaging;

/// <summary>
/// BEiT v2's evaluation transform (<c>datasets.build_transform(is_train=False)</c>):
/// <c>Resize(int(size/crop_pct), BICUBIC)</c> on the shorter side, <c>CenterCrop(size)</c>,
/// <c>ToTensor()</c>, <c>Normalize(mean, std)</c>. Each step reproduces torchvision + Pillow
/// arithmetic exactly, so a losslessly decoded image yields bit-identical model input.
/// </summary>
/// <remarks>
/// The reference skips resize and crop altogether for input sizes of 32 or less; that CIFAR-only
/// branch is not reproduced (images are always resized and cropped here).
/// </remarks>
public sealed class EvalTransform
{
    private readonly float[] _mean;
    private readonly float[] _std;

    /// <summary>Creates the transform.</summary>
    /// <param name="inputSize">Side of the square model input (224 for the BEiT v2 base models).</param>
    /// <param name="cropPct">Crop fraction; null means the reference default 224/256 = 0.875 below 384 and 1.0 from 384 on.</param>
    /// <param name="normalization">Mean/std; <see cref="PixelNormalization.ImageNet"/> when null.</param>
    public EvalTransform(int inputSize = 224, double? cropPct = null, PixelNormalization? normalization = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputSize);
        double pct = cropPct ?? (inputSize < 384 ? 224.0 / 256.0 : 1.0);
        if (!(pct > 0) || double.IsInfinity(pct))
            throw new ArgumentOutOfRangeException(nameof(cropPct), pct, "crop_pct must be a positive number");
        int resizeTo = (int)(inputSize / pct); // Python int(): truncation
        if (resizeTo < 1)
            throw new ArgumentOutOfRangeException(nameof(cropPct), pct, $"int({inputSize}/{pct}) is {resizeTo}");

        InputSize = inputSize;
        CropPct = pct;
        ResizeTo = resizeTo;
        Normalization = normalization ?? PixelNormalization.ImageNet;
        _mean = Normalization.MeanF32();
        _std = Normalization.StdF32();
    }

    /// <summary>Side of the square output.</summary>
    public int InputSize { get; }

    /// <summary>Crop fraction; the shorter side is resized to <see cref="InputSize"/> / CropPct.</summary>
    public double CropPct { get; }

    /// <summary>Target length of the shorter side, <c>int(InputSize / CropPct)</c> (224 → 256).</summary>
    public int ResizeTo { get; }

    /// <summary>Statistics used by the normalised outputs.</summary>
    public PixelNormalization Normalization { get; }

    /// <summary>
    /// The resize and crop geometry for an image of the given size, following torchvision's
    /// <c>Resize(int)</c> (longer side <c>int(target * long / short)</c>, computed in double and
    /// truncated; skipped when the shorter side already matches) and <c>CenterCrop</c>.
    /// </summary>
    public EvalTransformPlan Plan(int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);

        int shortSide = Math.Min(width, height);
        int longSide = Math.Max(width, height);
        int resizedWidth = width, resizedHeight = height;
        bool resized = shortSide != ResizeTo;
        if (resized)
        {
            double newLong = (double)ResizeTo * longSide / shortSide;
            // Only reachable with absurd aspect ratios (e.g. 1 x 10 million); the region resize
            // would cope, but the geometry no longer fits in int.
            if (newLong >= int.MaxValue)
                throw new ArgumentOutOfRangeException(nameof(width),
                    $"A {width}x{height} image would be resized to a side of {newLong:F0} pixels.");
            (resizedWidth, resizedHeight) = width <= height
                ? (ResizeTo, (int)newLong)
                : ((int)newLong, ResizeTo);
        }

        return new EvalTransformPlan(width, height, resizedWidth, resizedHeight, resized,
            CropBox.Center(resizedWidth, resizedHeight, InputSize));
    }

    /// <summary>
    /// Resize + centre crop, as 8-bit HWC (what the model sees, before ToTensor). Only the cropped
    /// part of the resized image is computed (identical pixels, bounded memory).
    /// </summary>
    public RgbBuffer CropU8(RgbBuffer image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return CropU8(image.Pixels, image.Width, image.Height);
    }

    /// <summary>
    /// <see cref="CropU8(RgbBuffer)"/> of interleaved RGB bytes held anywhere (e.g. an ImageSharp image's own
    /// pixel memory, so that serving does not copy each upload into a new array first).
    /// </summary>
    public RgbBuffer CropU8(ReadOnlySpan<byte> pixels, int width, int height)
    {
        var plan = Plan(width, height);
        var crop = plan.Crop;
        int size = InputSize;

        // The part of the crop that lies inside the resized image; the rest stays zero.
        int x0 = Math.Max(crop.Left, 0), y0 = Math.Max(crop.Top, 0);
        int x1 = Math.Min(crop.Right, plan.ResizedWidth), y1 = Math.Min(crop.Bottom, plan.ResizedHeight);
        if (x1 <= x0 || y1 <= y0) return new RgbBuffer(new byte[size * size * 3], size, size);
        int regionWidth = x1 - x0, regionHeight = y1 - y0;
        // With unchanged sizes both resampling passes are skipped and this is a plain cut.
        var region = PilResize.ResizeRegion(pixels, width, height, 3,
            plan.ResizedWidth, plan.ResizedHeight, x0, y0, regionWidth, regionHeight);
        if (regionWidth == size && regionHeight == size) return new RgbBuffer(region, size, size);   // the usual case: no padding

        var output = new byte[size * size * 3]; // zero = torchvision's padding fill
        int rowBytes = regionWidth * 3;
        for (int y = 0; y < regionHeight; y++)
            region.AsSpan(y * rowBytes, rowBytes)
                .CopyTo(output.AsSpan(((y0 - crop.Top + y) * size + (x0 - crop.Left)) * 3));
        return new RgbBuffer(output, size, size);
    }

    /// <summary>Resize + centre crop of an ImageSharp image, as 8-bit HWC.</summary>
    public RgbBuffer CropU8(Image<Rgb24> image) => CropU8(RgbBuffer.FromImage(image));

    /// <summary>
    /// ToTensor (+ Normalize) of an already cropped <see cref="InputSize"/>² image into
    /// <paramref name="destination"/> (3·S·S floats, CHW). The float32 operations are torchvision's,
    /// in its order: <c>u8 / 255f</c>, then <c>(v - mean) / std</c>.
    /// </summary>
    public void WriteChw(RgbBuffer crop, Span<float> destination, bool normalize = true)
    {
        ArgumentNullException.ThrowIfNull(crop);
        if (crop.Width != InputSize || crop.Height != InputSize)
            throw new ArgumentException($"Expected a {InputSize}x{InputSize} crop, got {crop.Width}x{crop.Height}.", nameof(crop));
        int plane = InputSize * InputSize;
        if (destination.Length != 3 * plane)
            throw new ArgumentException($"Expected {3 * plane} floats, got {destination.Length}.", nameof(destination));

        var pixels = crop.Pixels;
        for (int c = 0; c < 3; c++)
        {
            var dst = destination.Slice(c * plane, plane);
            float mean = _mean[c], std = _std[c];
            for (int i = 0, src = c; i < plane; i++, src += 3)
            {
                float v = pixels[src] / 255f;
                dst[i] = normalize ? (v - mean) / std : v;
            }
        }
    }

    /// <summary>ToTensor (+ Normalize) of a cropped image as a new CHW float array.</summary>
    public float[] ToChw(RgbBuffer crop, bool normalize = true)
    {
        var data = new float[3 * InputSize * InputSize];
        WriteChw(crop, data, normalize);
        return data;
    }

    /// <summary>The ViT input: normalised float32 (1,3,S,S). The caller disposes the tensor.</summary>
    public Tensor ToPixelValues(Image<Rgb24> image) => ToTensor([RgbBuffer.FromImage(image)], normalize: true);

    /// <summary>The ViT input from an RGB buffer: normalised float32 (1,3,S,S). The caller disposes the tensor.</summary>
    public Tensor ToPixelValues(RgbBuffer image) => ToTensor([image], normalize: true);

    /// <summary>
    /// The VQ-KD tokenizer input: float32 (1,3,S,S) in [0,1], not normalised (the tokenizer
    /// normalises internally for its teacher). The caller disposes the tensor.
    /// </summary>
    public Tensor ToUnitPixelValues(Image<Rgb24> image) => ToTensor([RgbBuffer.FromImage(image)], normalize: false);

    /// <summary>The VQ-KD tokenizer input from an RGB buffer: float32 (1,3,S,S) in [0,1]. The caller disposes the tensor.</summary>
    public Tensor ToUnitPixelValues(RgbBuffer image) => ToTensor([image], normalize: false);

    /// <summary>
    /// Several images as one float32 (B,3,S,S) batch, normalised or in [0,1]. Built from a single
    /// managed array, so no per-image tensors have to be created, stacked and disposed.
    /// </summary>
    public Tensor ToPixelValuesBatch(IReadOnlyList<Image<Rgb24>> images, bool normalize = true)
    {
        ArgumentNullException.ThrowIfNull(images);
        return ToTensor(images.Select(RgbBuffer.FromImage).ToList(), normalize);
    }

    /// <summary>Several RGB buffers as one float32 (B,3,S,S) batch. The caller disposes the tensor.</summary>
    public Tensor ToPixelValuesBatch(IReadOnlyList<RgbBuffer> images, bool normalize = true)
    {
        ArgumentNullException.ThrowIfNull(images);
        return ToTensor(images, normalize);
    }

    private Tensor ToTensor(IReadOnlyList<RgbBuffer> images, bool normalize)
    {
        if (images.Count == 0) throw new ArgumentException("At least one image is required.", nameof(images));
        int perImage = 3 * InputSize * InputSize;
        var data = new float[checked(images.Count * perImage)];
        for (int b = 0; b < images.Count; b++)
            WriteChw(CropU8(images[b]), data.AsSpan(b * perImage, perImage), normalize);
        return torch.tensor(data, new long[] { images.Count, 3, InputSize, InputSize });
    }
}
