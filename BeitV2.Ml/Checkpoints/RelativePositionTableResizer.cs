using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Resizes a BEiT relative position bias table (<c>relative_position_bias_table</c>, shape
/// ((2G−1)² + 3, heads)) from one square window G_src×G_src to another, as the unilm checkpoint loaders
/// do when fine-tuning at a different resolution (e.g. 224 px → 512 px segmentation: 14 → 32).
/// </summary>
/// <remarks>
/// The (2G−1)×(2G−1) grid of relative offsets is not resampled uniformly: the source offsets are
/// placed on a geometric grid 0, ±1, ±(1+q), ±(1+q+q²), … whose outermost point is about the new
/// largest offset, so that small offsets keep (nearly) their original values while large ones are
/// stretched. The last three rows ([CLS]→patch, patch→[CLS], [CLS]→[CLS]) do not depend on
/// geometry and are copied. Computation is in double precision; the result is float32 on the
/// input's device.
/// </remarks>
public static class RelativePositionTableResizer
{
    /// <summary>Rows at the end of the table that are not relative offsets.</summary>
    public const int ExtraTokenRows = 3;

    /// <summary>
    /// Resizes <paramref name="table"/> from <paramref name="srcWindow"/> to <paramref name="dstWindow"/>.
    /// Windows of equal size return a copy of the input unchanged (same dtype).
    /// </summary>
    /// <exception cref="NotSupportedException">A window is not square (the reference only handles square ones).</exception>
    /// <exception cref="ArgumentException">The table shape does not match <paramref name="srcWindow"/>.</exception>
    public static Tensor Resize(
        Tensor table, (int Height, int Width) srcWindow, (int Height, int Width) dstWindow,
        RelativeTableInterpolation interpolation = RelativeTableInterpolation.UnilmCubic)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (srcWindow.Height <= 0 || srcWindow.Width <= 0 || dstWindow.Height <= 0 || dstWindow.Width <= 0)
            throw new ArgumentException($"Windows must be positive, got {srcWindow} and {dstWindow}.");
        if (srcWindow.Height != srcWindow.Width || dstWindow.Height != dstWindow.Width)
            throw new NotSupportedException(
                $"Only square windows can be resized (as in the reference loaders); got {srcWindow} → {dstWindow}.");

        int srcSize = 2 * srcWindow.Height - 1;
        int dstSize = 2 * dstWindow.Height - 1;
        if (table.dim() != 2 || table.shape[0] != (long)srcSize * srcSize + ExtraTokenRows)
            throw new ArgumentException(
                $"Expected a table of shape ({srcSize * srcSize + ExtraTokenRows}, heads) for a {srcWindow} window, " +
                $"got ({string.Join(", ", table.shape)}).", nameof(table));
        if (!table.is_floating_point())
            throw new ArgumentException($"The table must be floating point, got {table.dtype}.", nameof(table));

        if (srcSize == dstSize) return table.clone();

        var positions = GeometricSamplePositions(srcSize, dstSize);
        var targets = TargetPositions(dstSize);
        if (interpolation == RelativeTableInterpolation.UnilmCubic && srcSize < 4)
            throw new NotSupportedException(
                $"Cubic interpolation needs a source window of at least 3×3 (SciPy refuses fewer than 4 samples), got {srcWindow}.");
        var weights = interpolation switch
        {
            RelativeTableInterpolation.UnilmCubic => NotAKnotCubicSpline.InterpolationMatrix(positions, targets),
            RelativeTableInterpolation.TimmLinear => LinearInterpolationMatrix(positions, targets),
            _ => throw new ArgumentOutOfRangeException(nameof(interpolation), interpolation, null),
        };

        long heads = table.shape[1];
        using var scope = torch.NewDisposeScope();
        var src = table.detach().to(CPU).to(float64);
        // Rows of the offset part are laid out as (dy, dx) row-major: view (S, S, heads) → (heads, S, S).
        var grid = src.narrow(0, 0, (long)srcSize * srcSize).reshape(srcSize, srcSize, heads).permute(2, 0, 1);
        var extra = src.narrow(0, (long)srcSize * srcSize, ExtraTokenRows);

        var w = torch.tensor(Flatten(weights), new long[] { dstSize, srcSize }, float64);
        // The interpolant is a tensor product of 1-D interpolants, so out = W_y · Z · W_xᵀ per head
        // (x and y use the same grid here).
        var resized = w.matmul(grid).matmul(w.t());                       // (heads, T, T)
        var flat = resized.reshape(heads, (long)dstSize * dstSize).t();   // (T·T, heads)
        var result = torch.cat(new[] { flat, extra }, 0).to(float32).contiguous().to(table.device);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The ratio q found by the reference's bisection on [1.01, 1.5] (until the interval is below
    /// 1e-6): the geometric sum 1 + q + … + q^(src/2 − 1) is about dst/2 (integer halves). Returned
    /// is the last midpoint, as in the reference.
    /// </summary>
    public static double GeometricRatio(int srcSize, int dstSize)
    {
        double left = 1.01, right = 1.5, q = 0;
        int n = srcSize / 2;
        int half = dstSize / 2;
        while (right - left > 1e-6)
        {
            q = (left + right) / 2.0;
            double gp = (1.0 - Math.Pow(q, n)) / (1.0 - q);
            if (gp > half) right = q;
            else left = q;
        }

        return q;
    }

    /// <summary>
    /// The source sample positions (same for rows and columns): −dis reversed, 0, dis, with
    /// dis = [1, 1+q, 1+q+q², …] (src/2 entries). Length <paramref name="srcSize"/> for odd sizes.
    /// </summary>
    public static double[] GeometricSamplePositions(int srcSize, int dstSize)
    {
        double q = GeometricRatio(srcSize, dstSize);
        int n = srcSize / 2;
        var dis = new double[n];
        double cur = 1;
        for (int i = 0; i < n; i++)
        {
            dis[i] = cur;
            cur += Math.Pow(q, i + 1);
        }

        var x = new double[2 * n + 1];
        for (int i = 0; i < n; i++)
        {
            x[n - 1 - i] = -dis[i];
            x[n + 1 + i] = dis[i];
        }

        return x;
    }

    /// <summary>The integer target offsets −dst/2 … dst/2.</summary>
    public static double[] TargetPositions(int dstSize)
    {
        int t = dstSize / 2;
        var d = new double[2 * t + 1];
        for (int i = 0; i < d.Length; i++) d[i] = i - t;
        return d;
    }

    // Piecewise-linear interpolation matrix, clamped outside the sample range (timm's
    // RegularGridInterpolator: bucketize, then weights from distances clipped at zero).
    private static double[,] LinearInterpolationMatrix(double[] knots, double[] targets)
    {
        int m = knots.Length;
        var w = new double[targets.Length, m];
        for (int k = 0; k < targets.Length; k++)
        {
            double t = targets[k];
            if (t <= knots[0]) { w[k, 0] = 1; continue; }
            if (t >= knots[m - 1]) { w[k, m - 1] = 1; continue; }
            int i = Array.BinarySearch(knots, t);
            if (i >= 0) { w[k, i] = 1; continue; }
            int right = ~i, left = right - 1;
            double span = knots[right] - knots[left];
            w[k, left] = (knots[right] - t) / span;
            w[k, right] = (t - knots[left]) / span;
        }

        return w;
    }

    private static double[] Flatten(double[,] a)
    {
        var flat = new double[a.Length];
        Buffer.BlockCopy(a, 0, flat, 0, a.Length * sizeof(double));
        return flat;
    }
}
