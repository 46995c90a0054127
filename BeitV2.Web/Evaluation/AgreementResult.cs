namespace BeitV2.Web.Evaluation;

/// <summary>
/// A segmenter and a classifier on the same Fashion-MNIST test items, each item alone (<c>evaluate --agreement-with</c>
/// and the pipeline's <c>agreement</c> stage). Rates are shares of <see cref="Items"/>; null only when no item was counted.
/// </summary>
public sealed record AgreementResult
{
    /// <summary>The segmenter's model id.</summary>
    public required string Segmenter { get; init; }
    /// <summary>The classifier's model id.</summary>
    public required string Classifier { get; init; }
    /// <summary>Items counted: the first this many images of the Fashion-MNIST test split.</summary>
    public required long Items { get; init; }
    /// <summary>How each model saw the items.</summary>
    public required string Setup { get; init; }
    /// <summary>Items the classifier labels right.</summary>
    public double? ClassifierAccuracy { get; init; }
    /// <summary>Items whose pixels the segmenter mostly gives their class (the majority of the non-background votes).</summary>
    public double? SegmenterAccuracy { get; init; }
    /// <summary>Items on which the segmenter's majority class is the classifier's prediction.</summary>
    public double? Agreement { get; init; }
    /// <summary>Items more than half of whose pixels the segmenter calls background.</summary>
    public double? BackgroundShare { get; init; }

    /// <summary>The pipeline's metric names (classifierAccuracy, segmenterAccuracy, agreement, backgroundShare); absent rates left out.</summary>
    public Dictionary<string, double> Metrics()
    {
        var metrics = new Dictionary<string, double>();
        void Add(string key, double? value)
        {
            if (value is { } v) metrics[key] = v;
        }
        Add("classifierAccuracy", ClassifierAccuracy);
        Add("segmenterAccuracy", SegmenterAccuracy);
        Add("agreement", Agreement);
        Add("backgroundShare", BackgroundShare);
        return metrics;
    }
}
