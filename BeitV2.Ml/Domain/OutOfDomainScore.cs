namespace BeitV2.Ml.Domain;

/// <summary>How far one image lies from a model's training images (<see cref="DomainFit.Score"/>).</summary>
/// <param name="Score">the percentage of held-out in-domain images that lie closer (0 … 100; 100: further than all of them).</param>
/// <param name="Threshold">the score past which the image is called outside (<see cref="DomainCalibration.WarningPercentile"/>).</param>
/// <param name="Outside">the image is further than the threshold's distance: the model's answer for it means little.</param>
/// <param name="Distance">the raw Mahalanobis distance to the nearest class mean.</param>
/// <param name="ThresholdDistance">the distance of the threshold.</param>
public sealed record OutOfDomainScore(double Score, double Threshold, bool Outside, double Distance, double ThresholdDistance);
