namespace BeitV2.Ml.Data;

/// <summary>How <see cref="FashionMnistSegmentationDataset"/> composes its scenes.</summary>
public sealed record FashionMnistSegmentationOptions
{
    /// <summary>Side of the square black canvas in pixels.</summary>
    public int CanvasSize { get; init; } = 64;

    /// <summary>Fewest items per scene.</summary>
    public int MinItems { get; init; } = 1;

    /// <summary>Most items per scene.</summary>
    public int MaxItems { get; init; } = 3;

    /// <summary>Smallest scale of an item (1 = 28 pixels). With both scales 1 the items are pasted unresampled.</summary>
    public double MinScale { get; init; } = 1.0;

    /// <summary>Largest scale of an item; the scaled side is capped at <see cref="CanvasSize"/>.</summary>
    public double MaxScale { get; init; } = 1.0;

    /// <summary>A pixel belongs to an item when its intensity exceeds this (0..254).</summary>
    public int Threshold { get; init; } = 32;

    /// <summary>Number of scenes; null means one per source item.</summary>
    public int? Count { get; init; }

    /// <summary>Seed; scene i is a pure function of (seed, i).</summary>
    public int Seed { get; init; }

    /// <summary>Throws when a value is out of range.</summary>
    public FashionMnistSegmentationOptions Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(CanvasSize, nameof(CanvasSize));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MinItems, nameof(MinItems));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxItems, MinItems, nameof(MaxItems));
        if (!(MinScale > 0) || !(MaxScale >= MinScale) || double.IsInfinity(MaxScale))
            throw new ArgumentOutOfRangeException(nameof(MinScale), $"Need 0 < MinScale <= MaxScale, got {MinScale}, {MaxScale}.");
        if (Threshold is < 0 or > 254) throw new ArgumentOutOfRangeException(nameof(Threshold), Threshold, "0..254");
        if (Count is < 0) throw new ArgumentOutOfRangeException(nameof(Count), Count, "must be non-negative");
        return this;
    }
}
