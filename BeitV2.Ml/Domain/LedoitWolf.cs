namespace BeitV2.Ml.Domain;

/// <summary>
/// The Ledoit–Wolf shrunk covariance (Ledoit and Wolf 2004, the estimator scikit-learn's <c>ledoit_wolf</c> computes):
/// (1 − s)·S + s·μ·I, S the sample covariance of already centred rows, μ = trace(S)/p, and the shrinkage s ∈ [0, 1] that
/// minimises the expected squared error. With fewer images than dimensions (or nearly so) S is singular or badly
/// conditioned; the shrunk matrix is always invertible, so the Mahalanobis distance stays defined.
/// </summary>
public static class LedoitWolf
{
    /// <param name="centred">n rows of p values, each with its mean (or its class's mean) already subtracted.</param>
    /// <returns>the shrunk p×p covariance, row-major, and the shrinkage used.</returns>
    /// <exception cref="ArgumentException">no rows, or rows of different lengths.</exception>
    public static (double[] Covariance, double Shrinkage) Estimate(IReadOnlyList<double[]> centred)
    {
        if (centred.Count == 0) throw new ArgumentException("The covariance needs at least one row.", nameof(centred));
        int n = centred.Count, p = centred[0].Length;
        if (centred.Any(r => r.Length != p)) throw new ArgumentException("Every row must have the same length.", nameof(centred));

        // S = XᵀX / n (the maximum-likelihood covariance, as the estimator's formulas assume).
        var s = new double[p * p];
        foreach (var row in centred)
            for (var i = 0; i < p; i++)
            {
                var ri = row[i];
                if (ri == 0) continue;
                var offset = i * p;
                for (var j = i; j < p; j++) s[offset + j] += ri * row[j];
            }
        for (var i = 0; i < p; i++)
            for (var j = i; j < p; j++)
            {
                s[i * p + j] /= n;
                s[j * p + i] = s[i * p + j];
            }

        double trace = 0;
        for (var i = 0; i < p; i++) trace += s[i * p + i];
        var mu = trace / p;

        // β̄ = 1/n² Σ_k ‖x_k‖⁴ − ‖S‖²_F / n (the variance of the sample covariance's entries), δ = ‖S − μI‖²_F, each over p.
        double normS = 0;
        foreach (var v in s) normS += v * v;
        double fourth = 0;
        foreach (var row in centred)
        {
            double sq = 0;
            foreach (var v in row) sq += v * v;
            fourth += sq * sq;
        }
        var beta = (fourth / n - normS) / ((double)p * n);
        var delta = (normS - 2 * mu * trace + p * mu * mu) / p;
        beta = Math.Min(beta, delta);
        var shrinkage = delta <= 0 ? 1.0 : Math.Max(0, beta / delta);

        for (var i = 0; i < p * p; i++) s[i] *= 1 - shrinkage;
        for (var i = 0; i < p; i++) s[i * p + i] += shrinkage * mu;
        return (s, shrinkage);
    }
}
