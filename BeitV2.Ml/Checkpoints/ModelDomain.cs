namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// What a model knows (the manifest's optional, additive <c>domain</c>): the dataset it was trained on, its classes, the
/// kind and size of image it expects, a one-line description, and optionally its measured quality and its out-of-domain
/// fit. Jobs fill it from their dataset and final validation; imports take what the user says, else <see cref="Unknown"/>;
/// packages written before it existed read as <see cref="UnknownDomain"/>.
/// </summary>
public sealed record ModelDomain
{
    /// <summary>The value of every field nobody filled in.</summary>
    public const string Unknown = "unknown";

    /// <summary>The training dataset, in words ("Fashion-MNIST"), or <see cref="Unknown"/>.</summary>
    public string Dataset { get; init; } = Unknown;
    /// <summary>The dataset's id on the server that trained it ("fashion-mnist"), when there was one.</summary>
    public string? DatasetId { get; init; }
    /// <summary>The classes the model tells apart (image classes, or pixel classes of a segmenter); null when it has none or nobody said.</summary>
    public IReadOnlyList<string>? Classes { get; init; }
    /// <summary>The kind of image it was trained on ("28×28 greyscale photos of one clothing item, centred on black"), or <see cref="Unknown"/>.</summary>
    public string InputKind { get; init; } = Unknown;
    /// <summary>Side of the images it was trained on, in pixels (the model's input size), when known.</summary>
    public int? InputSize { get; init; }
    /// <summary>One line for people: what the model is for and what it is not.</summary>
    public string Description { get; init; } = Unknown;
    /// <summary>Its measured quality (the training job's final validation, or an evaluation), when measured.</summary>
    public ModelQuality? Quality { get; init; }
    /// <summary>The out-of-domain fit beside the manifest, when fitted.</summary>
    public DomainFitReference? OutOfDomain { get; init; }

    /// <summary>A domain nobody described.</summary>
    public static ModelDomain UnknownDomain { get; } = new();
}

/// <summary>A measured score of a model.</summary>
/// <param name="Metric">"accuracy" (classifiers) or "mIoU" (segmenters), on [0, 1].</param>
/// <param name="Split">the split it was measured on ("test": the held-out images).</param>
/// <param name="Dataset">the dataset it was measured on.</param>
/// <param name="Images">how many images were scored, when known.</param>
public sealed record ModelQuality(string Metric, double Value, string Split, string Dataset, int? Images = null);

/// <summary>The manifest's pointer to a package's out-of-domain fit (<see cref="Domain.DomainFitFile"/>), with its headline numbers.</summary>
/// <param name="File">the fit's file name, beside the manifest.</param>
/// <param name="Sha256">the file's SHA-256, checked when it is loaded.</param>
/// <param name="Feature">the pooled feature it reads (<see cref="Domain.DomainFitInfo.MeanFeature"/>).</param>
/// <param name="WarningPercentile">the in-domain percentile past which an image is flagged.</param>
public sealed record DomainFitReference(string File, string? Sha256, string Feature, int FitImages, int CalibrationImages, double WarningPercentile);
