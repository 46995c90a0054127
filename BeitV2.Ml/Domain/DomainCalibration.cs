namespace BeitV2.Ml.Domain;

/// <summary>
/// Turns a raw distance into a number people read: the share of held-out in-domain images (images like the training
/// images, which the model never trained on) that lie closer to the training images than this one, in percent. The
/// warning threshold is the <see cref="WarningPercentile"/>th percentile of those distances, so about 1 % of in-domain
/// images are flagged by construction, and an image further than every held-out one scores 100.
/// </summary>
public sealed class DomainCalibration
{
    /// <summary>The percentile past which an image is called outside the domain.</summary>
    public const double WarningPercentile = 99;

    private readonly double[] sorted;

    /// <param name="heldOutDistances">distances of held-out in-domain images (at least one, all finite).</param>
    /// <exception cref="ArgumentException">none, or a value that is not a finite number.</exception>
    public DomainCalibration(IEnumerable<double> heldOutDistances)
    {
        sorted = heldOutDistances.Order().ToArray();
        if (sorted.Length == 0) throw new ArgumentException("The calibration needs at least one held-out image.", nameof(heldOutDistances));
        if (sorted.Any(d => !double.IsFinite(d) || d < 0)) throw new ArgumentException("Distances must be finite and not negative.", nameof(heldOutDistances));
        // The smallest held-out distance with at most (100 − WarningPercentile) % of the images above it.
        var index = (int)Math.Ceiling(WarningPercentile / 100 * sorted.Length) - 1;
        ThresholdDistance = sorted[Math.Clamp(index, 0, sorted.Length - 1)];
    }

    /// <summary>The held-out distances, ascending.</summary>
    public IReadOnlyList<double> Distances => sorted;
    /// <summary>The distance past which an image is flagged.</summary>
    public double ThresholdDistance { get; }

    /// <summary>The percentage of held-out images closer than <paramref name="distance"/> (0 … 100).</summary>
    public double Percentile(double distance)
    {
        // First index whose distance is ≥ the given one = the number strictly below it.
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (sorted[mid] < distance) lo = mid + 1;
            else hi = mid;
        }
        return 100.0 * lo / sorted.Length;
    }

    /// <summary>Whether <paramref name="distance"/> is past the warning threshold.</summary>
    public bool IsOutside(double distance) => distance > ThresholdDistance;
}
