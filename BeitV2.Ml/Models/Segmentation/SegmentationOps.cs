using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Segmentation;

/// <summary>The few tensor operations shared by the heads, the loss and prediction (mmseg's <c>resize</c> and CE).</summary>
public static class SegmentationOps
{
    /// <summary>Bilinear resize of (B, C, h, w) to (B, C, height, width), as mmseg's <c>resize</c> (F.interpolate).</summary>
    public static Tensor Resize(Tensor x, long height, long width, bool alignCorners = false) =>
        nn.functional.interpolate(x, new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: alignCorners);

    /// <summary>
    /// mmseg 0.11 <c>CrossEntropyLoss</c> (use_sigmoid False): per-pixel cross entropy with ignored pixels contributing 0,
    /// then the mean over ALL B·H·W pixels — ignored pixels count in the denominator (mmseg added <c>avg_non_ignore</c>
    /// only in 0.23, default off). So it differs from F.cross_entropy(reduction='mean') whenever labels contain the
    /// ignore index, and is 0 (not NaN) when every pixel is ignored.
    /// </summary>
    /// <remarks>
    /// With <paramref name="classWeights"/> (mmseg's <c>class_weight</c>) each pixel's cross entropy is multiplied by the
    /// weight of its label, as F.cross_entropy(weight=class_weight, reduction='none') does in mmseg's
    /// <c>cross_entropy</c>, and the result is still averaged over all B·H·W pixels: loss = Σ w_y·ce / (B·H·W). That is
    /// mmseg's behaviour (weight_reduce_loss with avg_factor None is a plain mean), not torch's reduction='mean' with a
    /// weight, which divides by Σ w_y over the labelled pixels — so down-weighting a class also lowers the loss scale.
    /// </remarks>
    /// <param name="logits">(B, K, H, W), already at the label resolution.</param>
    /// <param name="labels">(B, H, W) int64.</param>
    /// <param name="classWeights">(K) per-class weights, or null for the unweighted loss; cast to the logits' type and device.</param>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, long ignoreIndex = 255, Tensor? classWeights = null)
    {
        if (classWeights is null)
        {
            using var perPixel = nn.functional.cross_entropy(logits, labels, ignore_index: ignoreIndex, reduction: nn.Reduction.None);
            return perPixel.mean();
        }
        if (classWeights.dim() != 1 || classWeights.shape[0] != logits.shape[1])
            throw new ArgumentException(
                $"Class weights must be one per class ({logits.shape[1]}), got shape ({string.Join(", ", classWeights.shape)}).", nameof(classWeights));
        // A scope, not `using`: `to` may hand back the caller's own tensor when type and device already match.
        using var scope = NewDisposeScope();
        var w = classWeights.to(logits.dtype, logits.device);
        var weighted = nn.functional.cross_entropy(logits, labels, weight: w, ignore_index: ignoreIndex, reduction: nn.Reduction.None);
        return weighted.mean().MoveToOuterDisposeScope();
    }
}
