namespace BeitV2.Ml.Imaging;

/// <summary>
/// The geometry <see cref="EvalTransform"/> applies to one image: the resize target and the crop.
/// It is computed from the size alone, so it can be logged, tested against the fixtures, or used to
/// map model outputs (e.g. attention maps) back onto the original photo.
/// </summary>
/// <param name="OriginalWidth">Width of the decoded image.</param>
/// <param name="OriginalHeight">Height of the decoded image.</param>
/// <param name="ResizedWidth">Width after the shorter-side resize (equal to the original when skipped).</param>
/// <param name="ResizedHeight">Height after the shorter-side resize.</param>
/// <param name="IsResized">False when the shorter side already had the target length and the resize was skipped.</param>
/// <param name="Crop">The centre crop in resized-image coordinates.</param>
public sealed record EvalTransformPlan(
    int OriginalWidth,
    int OriginalHeight,
    int ResizedWidth,
    int ResizedHeight,
    bool IsResized,
    CropBox Crop);
