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
    /// <summary>CHW float32 pixels: normalised, or in [0, 1] when <see cref="Normalization"/> is null.</summary>
    public float[] Prepare(Image<Rgb24> image, out EvalTransformPlan? plan)
    {
        var transform = new EvalTransform(Size, normalization: Normalization ?? PixelNormalization.ImageNet);
        var rgb = RgbBuffer.FromImage(image);
        RgbBuffer view;
        if (Geometry == InputGeometry.CenterCrop)
        {
            plan = transform.Plan(rgb.Width, rgb.Height);
            view = transform.CropU8(rgb);
        }
        else
        {
            plan = null;
            view = rgb.Width == Size && rgb.Height == Size ? rgb : PilResize.Resize(rgb, Size, Size);
        }
        return transform.ToChw(view, normalize: Normalization is not null);
    }
}
