using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Data;

/// <summary>
/// The geometric result of <see cref="SegmentationTrainTransform.Augment"/> before padding: the
/// image and mask crops (at most S×S, identical geometry) and how they were made.
/// </summary>
/// <param name="Image">The resized, cropped (and possibly flipped) image.</param>
/// <param name="Mask">The class map with exactly the same geometry, <c>Image.Width·Image.Height</c> values.</param>
/// <param name="ResizedWidth">Width of the rescaled image the crop was cut from.</param>
/// <param name="ResizedHeight">Height of the rescaled image.</param>
/// <param name="Crop">The crop box in the rescaled image.</param>
/// <param name="Flipped">Whether the crop was mirrored.</param>
public sealed record SegmentationCrop(RgbBuffer Image, byte[] Mask, int ResizedWidth, int ResizedHeight, CropBox Crop, bool Flipped);
