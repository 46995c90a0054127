namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// One-dimensional interpolating cubic spline with "not-a-knot" end conditions, expressed as a linear
/// map from sample values to values at target points.
/// </summary>
/// <remarks>
/// This is the spline that FITPACK builds for interpolation (s = 0, k = 3): interior knots at
/// x[2..m−3] and quadruple end knots, i.e. a C² piecewise cubic that has no knot at x[1] and x[m−2].
/// SciPy's <c>interp2d(kind='cubic')</c> on a rectangular grid is the tensor product of two such
/// splines, so a 2-D resize can be done separably with two of these matrices. Like FITPACK's
/// evaluator, targets outside [x[0], x[m−1]] are clamped to the nearest end point (the spline is not
/// extrapolated as a polynomial). All arithmetic is in double precision.
/// </remarks>
public static class NotAKnotCubicSpline
{
    /// <summary>
    /// Returns W (targets × knots) with W[k, j] = value at <paramref name="targets"/>[k] of the spline
    /// through the unit vector e_j, so that spline(values)(targets) = W · values.
    /// </summary>
    /// <param name="knots">Strictly increasing sample positions, at least 4.</param>
    /// <param name="targets">Evaluation points (any order; clamped to the knot range).</param>
    public static double[,] InterpolationMatrix(IReadOnlyList<double> knots, IReadOnlyList<double> targets)
    {
        int m = knots.Count;
        if (m < 4)
            throw new ArgumentException($"A cubic interpolating spline needs at least 4 samples, got {m}.", nameof(knots));
        for (int i = 0; i < m; i++)
            if (!double.IsFinite(knots[i]) || (i > 0 && !(knots[i] > knots[i - 1])))
                throw new ArgumentException("Knots must be finite and strictly increasing.", nameof(knots));

        // Second-derivative form: M = C · y, with A · M = D · y. Rows 1..m-2 are the usual C²
        // continuity equations; rows 0 and m-1 say the third derivative does not jump at x[1] and
        // x[m-2] (not-a-knot).
        var h = new double[m - 1];
        for (int i = 0; i < m - 1; i++) h[i] = knots[i + 1] - knots[i];

        var a = new double[m, m];
        var d = new double[m, m];
        a[0, 0] = h[1];
        a[0, 1] = -(h[0] + h[1]);
        a[0, 2] = h[0];
        for (int i = 1; i < m - 1; i++)
        {
            a[i, i - 1] = h[i - 1];
            a[i, i] = 2 * (h[i - 1] + h[i]);
            a[i, i + 1] = h[i];
            d[i, i - 1] = 6 / h[i - 1];
            d[i, i] = -6 / h[i - 1] - 6 / h[i];
            d[i, i + 1] = 6 / h[i];
        }

        a[m - 1, m - 3] = h[m - 2];
        a[m - 1, m - 2] = -(h[m - 3] + h[m - 2]);
        a[m - 1, m - 1] = h[m - 3];

        var c = Solve(a, d);

        int count = targets.Count;
        var w = new double[count, m];
        for (int k = 0; k < count; k++)
        {
            double t = Math.Clamp(targets[k], knots[0], knots[m - 1]);
            if (double.IsNaN(t)) throw new ArgumentException("Targets must not be NaN.", nameof(targets));
            int i = Interval(knots, t);
            double hi = h[i];
            double left = knots[i + 1] - t;   // distance to the right end of the interval
            double right = t - knots[i];      // distance to the left end
            // s(t) = y_i·L/h + y_{i+1}·R/h + M_i·(L³/h − h·L)/6 + M_{i+1}·(R³/h − h·R)/6
            double cm0 = (left * left * left / hi - hi * left) / 6;
            double cm1 = (right * right * right / hi - hi * right) / 6;
            w[k, i] += left / hi;
            w[k, i + 1] += right / hi;
            for (int j = 0; j < m; j++)
                w[k, j] += cm0 * c[i, j] + cm1 * c[i + 1, j];
        }

        return w;
    }

    /// <summary>Interpolates <paramref name="values"/> given at <paramref name="knots"/> and evaluates at <paramref name="targets"/>.</summary>
    public static double[] Interpolate(IReadOnlyList<double> knots, IReadOnlyList<double> values, IReadOnlyList<double> targets)
    {
        if (values.Count != knots.Count)
            throw new ArgumentException($"Expected {knots.Count} values, got {values.Count}.", nameof(values));
        var w = InterpolationMatrix(knots, targets);
        var result = new double[targets.Count];
        for (int k = 0; k < result.Length; k++)
            for (int j = 0; j < values.Count; j++)
                result[k] += w[k, j] * values[j];
        return result;
    }

    // Index i of the interval [x_i, x_{i+1}] that holds t (t already clamped); the last interval
    // is closed on the right.
    private static int Interval(IReadOnlyList<double> knots, double t)
    {
        int lo = 0, hi = knots.Count - 2;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (knots[mid] <= t) lo = mid; else hi = mid - 1;
        }

        return lo;
    }

    // Solves A · X = B (square A, several right-hand sides) by Gaussian elimination with partial
    // pivoting. The not-a-knot rows make A non-symmetric and not diagonally dominant, so pivoting
    // matters; sizes are tiny (2·window − 1), so O(m³) is irrelevant.
    private static double[,] Solve(double[,] a, double[,] b)
    {
        int n = a.GetLength(0), r = b.GetLength(1);
        a = (double[,])a.Clone();
        var x = (double[,])b.Clone();
        for (int col = 0; col < n; col++)
        {
            int pivot = col;
            for (int row = col + 1; row < n; row++)
                if (Math.Abs(a[row, col]) > Math.Abs(a[pivot, col])) pivot = row;
            if (a[pivot, col] == 0) throw new InvalidOperationException("Singular spline system.");
            if (pivot != col)
            {
                for (int j = 0; j < n; j++) (a[col, j], a[pivot, j]) = (a[pivot, j], a[col, j]);
                for (int j = 0; j < r; j++) (x[col, j], x[pivot, j]) = (x[pivot, j], x[col, j]);
            }

            for (int row = col + 1; row < n; row++)
            {
                double f = a[row, col] / a[col, col];
                if (f == 0) continue;
                for (int j = col; j < n; j++) a[row, j] -= f * a[col, j];
                for (int j = 0; j < r; j++) x[row, j] -= f * x[col, j];
            }
        }

        for (int row = n - 1; row >= 0; row--)
        {
            for (int j = 0; j < r; j++)
            {
                double s = x[row, j];
                for (int k = row + 1; k < n; k++) s -= a[row, k] * x[k, j];
                x[row, j] = s / a[row, row];
            }
        }

        return x;
    }
}
