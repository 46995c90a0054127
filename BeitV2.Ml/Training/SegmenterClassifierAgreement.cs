namespace BeitV2.Ml.Training;

/// <summary>
/// The counts behind "the segmenter agrees with the classifier on isolated items at least as often as the classifier is
/// right": for each item shown alone, its true class, the classifier's prediction and what the segmenter says about the
/// item's own pixels (<see cref="Read"/>). Segmenter class <c>k ≥ 1</c> is item class <c>k − 1</c> and class 0 is the
/// background, as in <see cref="Data.FashionMnistSegmentationDataset"/>.
/// </summary>
public sealed class SegmenterClassifierAgreement
{
    /// <summary>What a segmenter said about one item's pixels.</summary>
    /// <param name="MajorityClass">the item class (0-based, the classifier's numbering) most of the item's pixels that the
    /// segmenter did not call background were given (ties: the lowest class); null when it called every one background.</param>
    /// <param name="ItemPixels">the item's pixels (its mask's non-background, non-ignored pixels).</param>
    /// <param name="BackgroundPixels">those of them the segmenter called background.</param>
    public readonly record struct ItemReading(int? MajorityClass, int ItemPixels, int BackgroundPixels)
    {
        /// <summary>More than half of the item's pixels were called background (an item without pixels is not).</summary>
        public bool MostlyBackground => 2L * BackgroundPixels > ItemPixels;
    }

    /// <summary>Counts items of a classifier with <paramref name="classes"/> classes (its segmenter has one more).</summary>
    public SegmenterClassifierAgreement(int classes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        Classes = classes;
    }

    /// <summary>The classifier's classes; the segmenter's are background + these.</summary>
    public int Classes { get; }

    /// <summary>Items counted.</summary>
    public long Items { get; private set; }
    /// <summary>Items whose classifier prediction is their class.</summary>
    public long ClassifierRight { get; private set; }
    /// <summary>Items whose segmenter majority class is their class.</summary>
    public long SegmenterRight { get; private set; }
    /// <summary>Items whose segmenter majority class is the classifier's prediction.</summary>
    public long Agreements { get; private set; }
    /// <summary>Items most of whose pixels the segmenter called background.</summary>
    public long MostlyBackground { get; private set; }

    /// <summary>Classifier accuracy on the items (NaN before any).</summary>
    public double ClassifierAccuracy => Rate(ClassifierRight);
    /// <summary>Share of items whose segmenter majority class is right (NaN before any).</summary>
    public double SegmenterAccuracy => Rate(SegmenterRight);
    /// <summary>Share of items on which the segmenter's majority class is the classifier's prediction (NaN before any).</summary>
    public double Agreement => Rate(Agreements);
    /// <summary>Share of items most of whose pixels the segmenter called background (NaN before any).</summary>
    public double BackgroundShare => Rate(MostlyBackground);

    /// <summary>
    /// Reads a segmenter's class map over one item: among the item's pixels (<paramref name="itemMask"/> not background
    /// and not <paramref name="ignoreIndex"/>), how many were called background and which non-background class most of the
    /// others were given. Both maps are row-major at the same size.
    /// </summary>
    /// <exception cref="ArgumentException">the maps differ in size, or the prediction holds a class the segmenter does not have.</exception>
    public static ItemReading Read(ReadOnlySpan<long> itemMask, ReadOnlySpan<long> prediction, int segmenterClasses, long ignoreIndex = 255)
    {
        if (itemMask.Length != prediction.Length)
            throw new ArgumentException($"The item mask has {itemMask.Length} pixels, the prediction {prediction.Length}.", nameof(prediction));
        ArgumentOutOfRangeException.ThrowIfLessThan(segmenterClasses, 2);
        Span<int> votes = segmenterClasses <= 256 ? stackalloc int[segmenterClasses] : new int[segmenterClasses];
        int pixels = 0;
        for (int i = 0; i < itemMask.Length; i++)
        {
            if (itemMask[i] == 0 || itemMask[i] == ignoreIndex) continue;
            long c = prediction[i];
            if ((ulong)c >= (ulong)segmenterClasses)
                throw new ArgumentException($"Predicted class {c} at pixel {i}; the segmenter has {segmenterClasses} classes.", nameof(prediction));
            votes[(int)c]++;
            pixels++;
        }
        int best = 0, bestVotes = 0; // class 0 stands for "none": the background takes no part in the vote
        for (int c = 1; c < segmenterClasses; c++)
            if (votes[c] > bestVotes) (best, bestVotes) = (c, votes[c]);
        return new ItemReading(best == 0 ? null : best - 1, pixels, votes[0]);
    }

    /// <summary>Counts one item: its true class, the classifier's prediction and the segmenter's reading of its pixels.</summary>
    public void Add(int label, int classifierPrediction, ItemReading reading)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(label);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(label, Classes);
        ArgumentOutOfRangeException.ThrowIfNegative(classifierPrediction);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(classifierPrediction, Classes);
        Items++;
        if (classifierPrediction == label) ClassifierRight++;
        if (reading.MajorityClass == label) SegmenterRight++;
        if (reading.MajorityClass == classifierPrediction) Agreements++;
        if (reading.MostlyBackground) MostlyBackground++;
    }

    private double Rate(long count) => Items == 0 ? double.NaN : (double)count / Items;
}
