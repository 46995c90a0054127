using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>The two 8-bit views <see cref="TwoViewTransform"/> makes from one image, and how.</summary>
/// <param name="ModelView">The ViT's view (size S), before ToTensor/Normalize.</param>
/// <param name="TokenizerView">The tokenizer's view (size S2), before ToTensor.</param>
/// <param name="Crop">The shared crop box in the coordinates of the (jittered, unflipped) input image.</param>
/// <param name="Flipped">Whether both views are mirrored.</param>
/// <param name="Jitter">The colour jitter applied before cropping, or null.</param>
public sealed record TwoViews(RgbBuffer ModelView, RgbBuffer TokenizerView, CropBox Crop, bool Flipped, ColorJitterParameters? Jitter);
