using System.Text.Json.Serialization;

namespace BeitV2.Web.Evaluation;

/// <summary>
/// The scores of one model on one dataset split: the <c>result</c> of an <c>evaluate</c> job (in its <c>job.json</c> and
/// in <c>GET /api/v1/jobs/{id}</c>) and what <c>evaluate --json FILE</c> writes. A classifier has <see cref="Accuracy"/>,
/// <see cref="Top5Accuracy"/>, <see cref="Loss"/> and <see cref="ConfusionMatrix"/>; a segmenter <see cref="MeanIoU"/>,
/// <see cref="PixelAccuracy"/> and <see cref="MeanClassAccuracy"/>. Values that do not exist (a class with no images)
/// are null, never NaN.
/// </summary>
public sealed record EvaluationResult
{
    /// <summary>The registered model's id.</summary>
    public required string Model { get; init; }
    public string? ModelName { get; init; }
    /// <summary><c>classifier</c> or <c>segmenter</c>.</summary>
    public required string Kind { get; init; }
    public required string Dataset { get; init; }
    /// <summary><c>test</c> (the held-out split training jobs validate on) or <c>train</c>.</summary>
    public required string Split { get; init; }
    /// <summary>Selects the subset when the split is capped, and composes the scenes of <c>fashion-mnist-seg</c>.</summary>
    public int Seed { get; init; }
    /// <summary>Images scored.</summary>
    public required long Images { get; init; }
    /// <summary>What the images went through before the model, from the model's manifest.</summary>
    public required string Preprocessing { get; init; }
    /// <summary>Class names by index: the dataset's (the model's labels when the dataset names none).</summary>
    public required IReadOnlyList<string> Classes { get; init; }

    /// <summary>Classifier: top-1 accuracy (correct predictions / images).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Accuracy { get; init; }
    /// <summary>Classifier with at least five classes: top-5 accuracy.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Top5Accuracy { get; init; }
    /// <summary>Classifier: mean cross-entropy per image.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Loss { get; init; }
    /// <summary>Classifier: image counts, <c>confusionMatrix[true class][predicted class]</c>, in the order of <see cref="Classes"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<IReadOnlyList<long>>? ConfusionMatrix { get; init; }

    /// <summary>Segmenter: mean over classes of intersection / union (classes absent from labels and predictions left out), mmseg's <c>mIoU</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? MeanIoU { get; init; }
    /// <summary>Segmenter: correct pixels / labelled pixels, mmseg's <c>aAcc</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? PixelAccuracy { get; init; }
    /// <summary>Segmenter: mean over the classes present in the labels of their pixel accuracy, mmseg's <c>mAcc</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? MeanClassAccuracy { get; init; }

    /// <summary>Segmenter scored with <c>--agreement-with</c>: it and a classifier on isolated Fashion-MNIST items.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public AgreementResult? Agreement { get; init; }

    /// <summary>One entry per class, in the order of <see cref="Classes"/>.</summary>
    public required IReadOnlyList<ClassScore> PerClass { get; init; }
    /// <summary>Anything that qualifies the numbers (labels that differ from the dataset's names, a preprocessing not applied as served).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
    /// <summary>Wall-clock seconds of the pass over the images.</summary>
    public double Seconds { get; init; }

    /// <summary>The headline numbers under the names the training jobs use in <c>lastMetrics</c> (accuracy, top5Accuracy, valLoss / mIoU, mAcc, aAcc).</summary>
    public Dictionary<string, double> Headline()
    {
        var metrics = new Dictionary<string, double> { ["images"] = Images };
        void Add(string key, double? value)
        {
            if (value is { } v) metrics[key] = v;
        }
        Add("accuracy", Accuracy);
        Add("top5Accuracy", Top5Accuracy);
        Add("valLoss", Loss);
        Add("mIoU", MeanIoU);
        Add("mAcc", MeanClassAccuracy);
        Add("aAcc", PixelAccuracy);
        return metrics;
    }
}

/// <summary>The scores of one class.</summary>
/// <param name="Images">classifier: images of this true class.</param>
/// <param name="Pixels">segmenter: labelled pixels of this class.</param>
/// <param name="Accuracy">classifier: correct / images of the class (recall); segmenter: correct / labelled pixels of it. Null when it has none.</param>
/// <param name="IoU">segmenter: intersection / union; null when the class is neither labelled nor predicted.</param>
public sealed record ClassScore(
    string Name,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? Images,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? Pixels,
    double? Accuracy,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonPropertyName("iou")] double? IoU);
