using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>
/// Absolute position embeddings at another resolution, DINO style (as the reference's
/// <c>interpolate_pos_encoding</c>): the patch part is resized bicubically with scale factor
/// (G'+0.1)/G; the [CLS] entry is kept.
/// </summary>
public static class PositionEmbedding
{
    /// <param name="pos">(1, 1+G·G, C) embedding.</param>
    /// <param name="gridH">target grid height.</param>
    /// <param name="gridW">target grid width.</param>
    public static Tensor Interpolate(Tensor pos, int gridH, int gridW)
    {
        using var scope = NewDisposeScope();
        var n = pos.shape[1] - 1;
        var dim = pos.shape[2];
        var g = (int)Math.Round(Math.Sqrt(n));
        if (g * g != n) throw new NotSupportedException("Only square position-embedding grids can be interpolated.");
        var cls = pos[.., ..1];
        var patch = pos[.., 1..].reshape(1, g, g, dim).permute(0, 3, 1, 2);
        // +0.1 avoids floating point error in the scale factor (reference comment).
        var resized = nn.functional.interpolate(patch,
            scale_factor: new[] { (gridH + 0.1) / g, (gridW + 0.1) / g }, mode: InterpolationMode.Bicubic,
            align_corners: false);
        if (resized.shape[2] != gridH || resized.shape[3] != gridW)
            throw new InvalidOperationException($"Position embedding interpolation produced {resized.shape[2]}x{resized.shape[3]}, expected {gridH}x{gridW}.");
        var flat = resized.permute(0, 2, 3, 1).reshape(1, -1, dim);
        return cat(new[] { cls, flat }, 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A checkpoint's position embedding resized for a model of another grid, as the reference
    /// fine-tuning loader does (run_class_finetuning.py, from DeiT/MAE): the square patch grid is
    /// resized bicubically to exactly <paramref name="gridH"/>×<paramref name="gridW"/>
    /// (<c>F.interpolate(size=...)</c>, align_corners False, so the sample positions follow G'/G, not
    /// the (G'+0.1)/G scale of <see cref="Interpolate"/>); the [CLS] entry is kept. Half-precision
    /// weights are interpolated in float32.
    /// </summary>
    /// <param name="pos">(1, 1+G·G, C) embedding.</param>
    public static Tensor Resize(Tensor pos, int gridH, int gridW)
    {
        using var scope = NewDisposeScope();
        if (pos.dim() != 3 || pos.shape[0] != 1)
            throw new ArgumentException($"Expected a (1, 1+G*G, C) position embedding, got ({string.Join(", ", pos.shape)}).", nameof(pos));
        var n = pos.shape[1] - 1;
        var dim = pos.shape[2];
        var g = (int)Math.Round(Math.Sqrt(n));
        if (g * g != n) throw new NotSupportedException("Only square position-embedding grids can be interpolated.");
        var p = pos.dtype is ScalarType.Float32 or ScalarType.Float64 ? pos : pos.to_type(ScalarType.Float32);
        var cls = p[.., ..1];
        var patch = p[.., 1..].reshape(1, g, g, dim).permute(0, 3, 1, 2);
        var resized = nn.functional.interpolate(patch, size: new long[] { gridH, gridW }, mode: InterpolationMode.Bicubic,
            align_corners: false);
        var flat = resized.permute(0, 2, 3, 1).reshape(1, -1, dim);
        return cat(new[] { cls, flat }, 1).MoveToOuterDisposeScope();
    }
}
