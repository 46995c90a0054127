namespace BeitV2.Ml.Domain;

/// <summary>
/// A model's out-of-domain detector: Gaussians over its pooled features of in-domain training images
/// (<see cref="FeatureGaussian"/>), calibrated on held-out in-domain images (<see cref="DomainCalibration"/>). Fitted once
/// (at the end of training, or by the <c>fit-domain</c> command) on features the served model computed, and stored in the
/// package (<see cref="DomainFitFile"/>), so serving scores an image from the feature its answer already carries.
/// </summary>
public sealed class DomainFit
{
    public DomainFit(FeatureGaussian gaussian, DomainCalibration calibration, DomainFitInfo info)
    {
        if (info.Dim != gaussian.Dim) throw new ArgumentException($"The fit says {info.Dim} values per feature; its Gaussians have {gaussian.Dim}.", nameof(info));
        Gaussian = gaussian;
        Calibration = calibration;
        Info = info;
    }

    public FeatureGaussian Gaussian { get; }
    public DomainCalibration Calibration { get; }
    public DomainFitInfo Info { get; }

    /// <summary>Fits on <paramref name="fitFeatures"/> (with their classes when known) and calibrates on <paramref name="heldOutFeatures"/>.</summary>
    /// <param name="info">what was fitted; its counts, dimension and shrinkage are filled in here.</param>
    /// <exception cref="ArgumentException">too few features, or features of different lengths.</exception>
    public static DomainFit Fit(IReadOnlyList<float[]> fitFeatures, IReadOnlyList<int>? labels, IReadOnlyList<float[]> heldOutFeatures, DomainFitInfo info)
    {
        if (heldOutFeatures.Count == 0) throw new ArgumentException("The calibration needs at least one held-out image.", nameof(heldOutFeatures));
        var (gaussian, shrinkage) = FeatureGaussian.Fit(fitFeatures, labels);
        var calibration = new DomainCalibration(heldOutFeatures.Select(f => gaussian.Distance(f)));
        return new DomainFit(gaussian, calibration, info with
        {
            Dim = gaussian.Dim, Classes = gaussian.Means.Count, FitImages = fitFeatures.Count, CalibrationImages = heldOutFeatures.Count,
            Shrinkage = shrinkage,
        });
    }

    /// <summary>The raw distance of a feature (for measuring: the AUROC is taken over these).</summary>
    public double Distance(ReadOnlySpan<float> feature) => Gaussian.Distance(feature);

    /// <summary>The calibrated score of one image's pooled feature.</summary>
    /// <exception cref="ArgumentException">a feature of another length than the fit's.</exception>
    public OutOfDomainScore Score(ReadOnlySpan<float> feature)
    {
        var distance = Gaussian.Distance(feature);
        return new OutOfDomainScore(Math.Round(Calibration.Percentile(distance), 1), DomainCalibration.WarningPercentile,
            Calibration.IsOutside(distance), Math.Round(distance, 3), Math.Round(Calibration.ThresholdDistance, 3));
    }
}

/// <summary>What a <see cref="DomainFit"/> was fitted on and how.</summary>
/// <param name="Feature">which pooled feature ("mean": the mean-pooled embedding; for a mean-pooling classifier its head's
/// input; for a segmenter its backbone's deepest selected block, averaged).</param>
/// <param name="Dataset">the in-domain dataset.</param>
/// <param name="FitSplit">the split the Gaussians were fitted on.</param>
/// <param name="CalibrationSplit">the split of the held-out images.</param>
/// <param name="Engine">the serving engine that computed the features.</param>
/// <param name="Shrinkage">the Ledoit–Wolf shrinkage of the covariance.</param>
public sealed record DomainFitInfo(string Feature, string Dataset, string FitSplit, string CalibrationSplit, string Engine,
    int Dim = 0, int Classes = 0, int FitImages = 0, int CalibrationImages = 0, double Shrinkage = 0)
{
    /// <summary>The pooled mean feature (the only one used today).</summary>
    public const string MeanFeature = "mean";
}
