using BeitV2.Ml.Domain;

namespace BeitV2.Ml.Tests.Domain;

/// <summary>The out-of-domain math on synthetic Gaussians, where the right answers are known.</summary>
public sealed class DomainFitMathTests
{
    private static float[][] Sample(Random random, int n, double[] mean, double[] std) =>
        Enumerable.Range(0, n).Select(_ => mean.Select((m, j) => (float)(m + std[j] * Normal(random))).ToArray()).ToArray();

    private static double Normal(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    [Fact]
    public void Distance_IsTheMahalanobisDistance_OfAKnownDiagonalGaussian()
    {
        // Many samples in few dimensions: the shrinkage is small and the fitted Gaussian is close to the true one,
        // N((1, −2, 3), diag(1², 2², 0.5²)).
        var random = new Random(1);
        double[] mean = [1, -2, 3], std = [1, 2, 0.5];
        var (gaussian, shrinkage) = FeatureGaussian.Fit(Sample(random, 20000, mean, std));
        Assert.InRange(shrinkage, 0, 0.01);
        Assert.Equal(0, gaussian.Distance([1f, -2f, 3f]), 0.05);
        // One standard deviation along each axis is distance 1; (2σ₁, 2σ₂) is √8.
        Assert.Equal(1, gaussian.Distance([2f, -2f, 3f]), 0.03);
        Assert.Equal(1, gaussian.Distance([1f, 0f, 3f]), 0.03);
        Assert.Equal(1, gaussian.Distance([1f, -2f, 3.5f]), 0.03);
        Assert.Equal(Math.Sqrt(8), gaussian.Distance([3f, 2f, 3f]), 0.08);
    }

    [Fact]
    public void Distance_IsToTheNearestClassMean_WithTheSharedCovariance()
    {
        var random = new Random(2);
        double[] std = [1, 1];
        var a = Sample(random, 5000, [0, 0], std);
        var b = Sample(random, 5000, [10, 0], std);
        var labels = Enumerable.Repeat(0, a.Length).Concat(Enumerable.Repeat(1, b.Length)).ToList();
        var (classes, _) = FeatureGaussian.Fit(a.Concat(b).ToList(), labels);
        Assert.Equal(2, classes.Means.Count);
        // Close to either class mean is in the domain; halfway between them is 5 σ from both.
        Assert.Equal(0, classes.Distance([10f, 0f]), 0.1);
        Assert.Equal(5, classes.Distance([5f, 0f]), 0.15);
        // One Gaussian over both classes has a wide x-variance (σ² = 1 + 25), so the same point looks in-domain to it:
        // the class-conditional fit is what tells the gap between the classes apart.
        var (pooled, _) = FeatureGaussian.Fit(a.Concat(b).ToList());
        Assert.InRange(pooled.Distance([5f, 0f]), 0, 0.1);
    }

    [Fact]
    public void LedoitWolf_ShrinksHard_WhenThereAreFewerSamplesThanDimensions_AndTheResultInverts()
    {
        var random = new Random(3);
        var d = 50;
        var rows = Sample(random, 20, new double[d], Enumerable.Repeat(1.0, d).ToArray())
            .Select(r => r.Select(v => (double)v).ToArray()).ToList();
        var mean = Enumerable.Range(0, d).Select(j => rows.Average(r => r[j])).ToArray();
        var centred = rows.Select(r => r.Select((v, j) => v - mean[j]).ToArray()).ToList();
        var (covariance, shrinkage) = LedoitWolf.Estimate(centred);
        // The sample covariance of 20 points in 50 dimensions has rank 19: singular. The true covariance is I (a multiple of
        // the target), so the estimator shrinks nearly all the way.
        Assert.InRange(shrinkage, 0.5, 1);
        var inverse = SymmetricInverse.Invert(covariance, d);
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++)
            {
                double sum = 0;
                for (var k = 0; k < d; k++) sum += covariance[i * d + k] * inverse[k * d + j];
                Assert.Equal(i == j ? 1 : 0, sum, 1e-9);
            }
    }

    [Fact]
    public void SymmetricInverse_RefusesAMatrixThatIsNotPositiveDefinite() =>
        Assert.Throws<ArgumentException>(() => SymmetricInverse.Invert([1, 2, 2, 1], 2));

    [Fact]
    public void Auroc_IsOneForSeparatedScores_HalfForTies_AndCountsPairs()
    {
        Assert.Equal(1, Auroc.Of([5, 6, 7], [1, 2, 3]));
        Assert.Equal(0, Auroc.Of([1, 2], [5, 6]));
        Assert.Equal(0.5, Auroc.Of([1, 1], [1, 1]));
        // Pairs (p > n): 3 > 2 ✓, 3 > 4 ✗, 5 > 2 ✓, 5 > 4 ✓ → 3 of 4.
        Assert.Equal(0.75, Auroc.Of([3, 5], [2, 4]));
        // A tie counts one half: (2 vs 2) ½ + (2 vs 1) 1 → 1.5 of 2.
        Assert.Equal(0.75, Auroc.Of([2], [2, 1]));
    }

    [Fact]
    public void Calibration_FlagsAboutOnePercentOfInDomainImages_AndScoresByPercentile()
    {
        var calibration = new DomainCalibration(Enumerable.Range(1, 1000).Select(i => (double)i));
        Assert.Equal(990, calibration.ThresholdDistance);
        Assert.Equal(10, Enumerable.Range(1, 1000).Count(i => calibration.IsOutside(i)));
        Assert.Equal(0, calibration.Percentile(0.5));
        Assert.Equal(50, calibration.Percentile(500.5));
        Assert.Equal(100, calibration.Percentile(5000));
    }

    [Fact]
    public void Fit_SeparatesAShiftedGaussian_FromTheOneItWasFittedOn()
    {
        var random = new Random(4);
        var d = 16;
        var std = Enumerable.Repeat(1.0, d).ToArray();
        var fit = DomainFit.Fit(Sample(random, 3000, new double[d], std), null, Sample(random, 1000, new double[d], std),
            new DomainFitInfo(DomainFitInfo.MeanFeature, "synthetic", "train", "test", "none"));
        var inDomain = Sample(random, 500, new double[d], std);
        var outside = Sample(random, 500, Enumerable.Repeat(3.0, d).ToArray(), std);   // 12 σ away in Mahalanobis terms
        var auroc = Auroc.Of(outside.Select(f => fit.Distance(f)).ToList(), inDomain.Select(f => fit.Distance(f)).ToList());
        Assert.True(auroc > 0.99, $"AUROC {auroc}");
        var flaggedIn = inDomain.Count(f => fit.Score(f).Outside) / (double)inDomain.Length;
        Assert.InRange(flaggedIn, 0, 0.04);   // ~1 % by construction; a fresh sample of 500 scatters around it
        Assert.All(outside.Take(20), f => Assert.True(fit.Score(f) is { Outside: true, Score: > 99 }));
        Assert.Equal((16, 1, 3000, 1000), (fit.Info.Dim, fit.Info.Classes, fit.Info.FitImages, fit.Info.CalibrationImages));
    }
}
