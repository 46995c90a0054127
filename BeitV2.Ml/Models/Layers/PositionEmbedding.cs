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
}
