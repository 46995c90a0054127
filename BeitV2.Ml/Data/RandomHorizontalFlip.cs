namespace BeitV2.Ml.Data;

/// <summary>
/// torchvision's <c>RandomHorizontalFlip(p)</c>: mirror with probability p
/// (<c>torch.rand(1) &lt; p</c>). The mirror itself is <see cref="PixelOps.FlipHorizontal(Imaging.RgbBuffer)"/>.
/// </summary>
public sealed class RandomHorizontalFlip
{
    /// <summary>Creates the transform.</summary>
    public RandomHorizontalFlip(double probability = 0.5)
    {
        if (!(probability >= 0 && probability <= 1))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "must be in [0, 1]");
        Probability = probability;
    }

    /// <summary>Probability of a flip.</summary>
    public double Probability { get; }

    /// <summary>Draws whether to flip (consumes one random number, also when p is 0 or 1).</summary>
    public bool Draw(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        return random.NextDouble() < Probability;
    }

    /// <summary>Flips the image with probability <see cref="Probability"/>.</summary>
    public Imaging.RgbBuffer Apply(Imaging.RgbBuffer image, Random random) =>
        Draw(random) ? PixelOps.FlipHorizontal(image) : image;
}
