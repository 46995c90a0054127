namespace BeitV2.Ml.Data;

/// <summary>
/// A random-access collection of images, the equivalent of a PyTorch map-style <c>Dataset</c>.
/// Implementations load and decode lazily in <see cref="Get"/>; <see cref="Get"/> must be safe to
/// call from several threads at once (<see cref="BatchLoader"/> prepares a batch in parallel).
/// </summary>
public interface IImageDataset
{
    /// <summary>Whether samples carry image labels, class maps, or nothing.</summary>
    DatasetKind Kind { get; }

    /// <summary>Number of samples.</summary>
    int Count { get; }

    /// <summary>
    /// Class names by index: image classes for classification, pixel classes for segmentation
    /// (may be empty when a segmentation set ships no names), empty for unlabelled data.
    /// </summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>Loads sample <paramref name="index"/> (0 ≤ index &lt; <see cref="Count"/>).</summary>
    /// <exception cref="DatasetException">The stored item is unreadable (corrupt image, bad mask).</exception>
    ImageSample Get(int index);
}
