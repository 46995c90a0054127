namespace BeitV2.Ml.Checkpoints;

/// <summary>How <see cref="RelativePositionTableResizer"/> interpolates on the geometric offset grid.</summary>
public enum RelativeTableInterpolation
{
    /// <summary>
    /// unilm (run_class_finetuning.py, semantic_segmentation mmcv_custom/checkpoint.py): SciPy
    /// <c>interp2d(kind='cubic')</c>, i.e. the interpolating not-a-knot bicubic spline, clamped outside
    /// the sampled range. The default, and what the published fine-tuning results used.
    /// </summary>
    UnilmCubic,

    /// <summary>
    /// timm <c>resize_rel_pos_bias_table</c> default (without TIMM_USE_SCIPY_INTERP): bilinear
    /// interpolation on the same geometric grid, clamped outside it.
    /// </summary>
    TimmLinear,
}
