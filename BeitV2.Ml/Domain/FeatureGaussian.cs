namespace BeitV2.Ml.Domain;

/// <summary>
/// Gaussians over a model's pooled features, one mean per class and one shared covariance (Lee et al. 2018, "A simple
/// unified framework for detecting out-of-distribution samples"): an image's distance to the training images is its
/// smallest Mahalanobis distance to a class mean, √((x − μ_k)ᵀ Σ⁻¹ (x − μ_k)). Without labels there is one class. The
/// covariance is the within-class one, shrunk by <see cref="LedoitWolf"/> so that it inverts.
/// </summary>
public sealed class FeatureGaussian
{
    private readonly double[][] means;
    private readonly double[] precision;
    private readonly double[][] precisionTimesMean;   // Σ⁻¹μ_k
    private readonly double[] meanNorm;               // μ_kᵀΣ⁻¹μ_k

    /// <param name="means">K class means of D values.</param>
    /// <param name="precision">Σ⁻¹, D×D row-major.</param>
    /// <exception cref="ArgumentException">sizes that do not fit, or non-finite values.</exception>
    public FeatureGaussian(IReadOnlyList<double[]> means, double[] precision)
    {
        if (means.Count == 0) throw new ArgumentException("At least one class mean is needed.", nameof(means));
        Dim = means[0].Length;
        if (Dim == 0 || means.Any(m => m.Length != Dim)) throw new ArgumentException("Every class mean must have the same, non-zero length.", nameof(means));
        if (precision.Length != Dim * Dim) throw new ArgumentException($"The precision matrix needs {Dim}x{Dim} values, not {precision.Length}.", nameof(precision));
        if (means.Any(m => m.Any(v => !double.IsFinite(v))) || precision.Any(v => !double.IsFinite(v)))
            throw new ArgumentException("The fit holds values that are not finite numbers.");
        this.means = means.Select(m => m.ToArray()).ToArray();
        this.precision = precision.ToArray();
        precisionTimesMean = this.means.Select(Multiply).ToArray();
        meanNorm = this.means.Select((m, k) => Dot(m, precisionTimesMean[k])).ToArray();
    }

    /// <summary>Feature length D.</summary>
    public int Dim { get; }
    /// <summary>The class means (K of D).</summary>
    public IReadOnlyList<double[]> Means => means;
    /// <summary>Σ⁻¹, D×D row-major.</summary>
    public IReadOnlyList<double> Precision => precision;

    /// <summary>
    /// Fits class means and the shared, shrunk covariance to <paramref name="features"/>.
    /// </summary>
    /// <param name="labels">the class of each feature, or null for one Gaussian over all of them; classes with no
    /// feature get no mean.</param>
    /// <returns>the fit and the Ledoit–Wolf shrinkage it used.</returns>
    /// <exception cref="ArgumentException">fewer than two features, features of different lengths, labels that do not pair up.</exception>
    public static (FeatureGaussian Gaussian, double Shrinkage) Fit(IReadOnlyList<float[]> features, IReadOnlyList<int>? labels = null)
    {
        if (features.Count < 2) throw new ArgumentException("A fit needs at least two images.", nameof(features));
        if (labels is not null && labels.Count != features.Count) throw new ArgumentException("One label per feature.", nameof(labels));
        var d = features[0].Length;
        if (features.Any(f => f.Length != d)) throw new ArgumentException("Every feature must have the same length.", nameof(features));
        var groups = Enumerable.Range(0, features.Count).GroupBy(i => labels?[i] ?? 0).OrderBy(g => g.Key).ToList();
        var means = new List<double[]>();
        var centred = new List<double[]>(features.Count);
        foreach (var group in groups)
        {
            var mean = new double[d];
            foreach (var i in group)
                for (var j = 0; j < d; j++) mean[j] += features[i][j];
            var count = group.Count();
            for (var j = 0; j < d; j++) mean[j] /= count;
            means.Add(mean);
            foreach (var i in group)
            {
                var row = new double[d];
                for (var j = 0; j < d; j++) row[j] = features[i][j] - mean[j];
                centred.Add(row);
            }
        }
        var (covariance, shrinkage) = LedoitWolf.Estimate(centred);
        return (new FeatureGaussian(means, SymmetricInverse.Invert(covariance, d)), shrinkage);
    }

    /// <summary>The smallest Mahalanobis distance of <paramref name="feature"/> to a class mean.</summary>
    /// <exception cref="ArgumentException">a feature of another length.</exception>
    public double Distance(ReadOnlySpan<float> feature)
    {
        if (feature.Length != Dim) throw new ArgumentException($"A feature of {feature.Length} values for a fit of {Dim}.", nameof(feature));
        var x = new double[Dim];
        for (var i = 0; i < Dim; i++) x[i] = feature[i];
        var xPx = Dot(x, Multiply(x));
        var best = double.PositiveInfinity;
        for (var k = 0; k < means.Length; k++)
            best = Math.Min(best, xPx - 2 * Dot(x, precisionTimesMean[k]) + meanNorm[k]);
        return Math.Sqrt(Math.Max(0, best));   // rounding can take a zero distance a hair below 0
    }

    private double[] Multiply(double[] v)
    {
        var result = new double[Dim];
        for (var i = 0; i < Dim; i++)
        {
            double sum = 0;
            var offset = i * Dim;
            for (var j = 0; j < Dim; j++) sum += precision[offset + j] * v[j];
            result[i] = sum;
        }
        return result;
    }

    private static double Dot(double[] a, double[] b)
    {
        double sum = 0;
        for (var i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }
}
