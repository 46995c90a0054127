using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Segmentation;

/// <summary>The few tensor operations shared by the heads, the loss and prediction (mmseg's <c>resize</c> and CE).</summary>
public static class SegmentationOps
{
    /// <summary>Bilinear resize of (B, C, h, w) to (B, C, height, width), as mmseg's <c>resize</c> (F.interpolate).</summary>
    public static Tensor Resize(Tensor x, long height, long width, bool alignCorners = false) =>
        nn.functional.interpolate(x, new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: alignCorners);

    /// <summary>
    /// mmseg 0.11 <c>CrossEntropyLoss</c> (use_sigmoid False, no class weights): per-pixel cross
    /// entropy with ignored pixels contributing 0, then the mean over ALL B·H·W pixels — ignored
    /// pixels count in the denominator (mmseg added <c>avg_non_ignore</c> only in 0.23, default off).
    /// So it differs from F.cross_entropy(reduction='mean') whenever labels contain the ignore index,
    /// and is 0 (not NaN) when every pixel is ignored.
    /// </summary>
    /// <param name="logits">(B, K, H, W), already at the label resolution.</param>
    /// <param name="labels">(B, H, W) int64.</param>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, long ignoreIndex = 255)
    {
        using var perPixel = nn.functional.cross_entropy(logits, labels, ignore_index: ignoreIndex, reduction: nn.Reduction.None);
        return perPixel.mean();
    }
}
