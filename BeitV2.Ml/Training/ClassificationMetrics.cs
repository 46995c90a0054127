using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>
/// Classification scores over a whole split, accumulated batch by batch: the confusion matrix (rows the
/// true class, columns the predicted one, top-1 = argmax of the logits), top-5 hits and the summed
/// cross-entropy. Top-1 accuracy is the matrix's trace over its total, as the reference's
/// <c>engine_for_finetuning.evaluate</c> computes <c>acc1</c> (there averaged per batch and weighted by the
/// batch size, which is the same number).
/// </summary>
public sealed class ClassificationMetrics
{
    private readonly long[] confusion;
    private double lossSum;
    private long top5Hits;

    public ClassificationMetrics(int numClasses)
    {
        if (numClasses <= 0) throw new ArgumentException("numClasses must be positive.", nameof(numClasses));
        NumClasses = numClasses;
        confusion = new long[numClasses * numClasses];
    }

    public int NumClasses { get; }

    /// <summary>Images counted so far.</summary>
    public long Samples { get; private set; }

    /// <summary>Adds a batch: (B, K) logits and (B) class ids (both on the same device).</summary>
    /// <exception cref="ArgumentException">the logits have another class count, or a label lies outside 0..K−1.</exception>
    public void Update(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        if (logits.dim() != 2 || logits.shape[1] != NumClasses)
            throw new ArgumentException($"Expected (B, {NumClasses}) logits, got ({string.Join(", ", logits.shape)}).", nameof(logits));
        var target = labels.to(ScalarType.Int64).flatten();
        if (target.shape[0] != logits.shape[0]) throw new ArgumentException("Logits and labels have different batch sizes.", nameof(labels));
        if (target.numel() == 0) return;
        if (target.min().item<long>() < 0 || target.max().item<long>() >= NumClasses)
            throw new ArgumentException($"A label lies outside the model's {NumClasses} classes (0..{NumClasses - 1}).", nameof(labels));
        lossSum += nn.functional.cross_entropy(logits, target, reduction: nn.Reduction.Sum).to(float64).item<double>();
        var predicted = logits.argmax(-1);
        // One bincount over true·K + predicted fills the whole K×K matrix of the batch.
        var counts = bincount(target * NumClasses + predicted, minlength: NumClasses * NumClasses).to(ScalarType.Int64).cpu().data<long>().ToArray();
        for (var i = 0; i < confusion.Length; i++) confusion[i] += counts[i];
        if (NumClasses >= 5) top5Hits += logits.topk(5, dim: -1).indexes.eq(target.unsqueeze(-1)).any(-1).sum().item<long>();
        Samples += target.shape[0];
    }

    /// <summary>Images of true class <paramref name="actual"/> predicted as <paramref name="predicted"/>.</summary>
    public long Count(int actual, int predicted) => confusion[actual * NumClasses + predicted];

    /// <summary>The confusion matrix: <c>[true][predicted]</c> image counts (a copy).</summary>
    public long[][] Confusion => Enumerable.Range(0, NumClasses).Select(t => confusion.AsSpan(t * NumClasses, NumClasses).ToArray()).ToArray();

    /// <summary>Images per true class (the matrix's row sums).</summary>
    public long[] Support => Enumerable.Range(0, NumClasses).Select(t => confusion.AsSpan(t * NumClasses, NumClasses).ToArray().Sum()).ToArray();

    /// <summary>Correct top-1 predictions (the trace).</summary>
    public long Correct => Enumerable.Range(0, NumClasses).Sum(k => Count(k, k));

    /// <summary>Top-1 accuracy; NaN before the first image.</summary>
    public double Accuracy => Samples > 0 ? (double)Correct / Samples : double.NaN;

    /// <summary>Top-5 accuracy; NaN with fewer than five classes or no images.</summary>
    public double Top5Accuracy => NumClasses >= 5 && Samples > 0 ? (double)top5Hits / Samples : double.NaN;

    /// <summary>Mean cross-entropy per image; NaN before the first image.</summary>
    public double MeanLoss => Samples > 0 ? lossSum / Samples : double.NaN;

    /// <summary>Per-class accuracy (recall: correct / images of the class); NaN for a class without images.</summary>
    public double[] ClassAccuracy
    {
        get
        {
            var support = Support;
            return Enumerable.Range(0, NumClasses).Select(k => support[k] > 0 ? (double)Count(k, k) / support[k] : double.NaN).ToArray();
        }
    }

    /// <summary>The trainers' validation metrics: <c>accuracy</c>, <c>valLoss</c>, <c>valSamples</c> and, from five classes on, <c>top5Accuracy</c>.</summary>
    public Dictionary<string, double> ToValidationMetrics()
    {
        if (Samples == 0) return new Dictionary<string, double>();
        var result = new Dictionary<string, double> { ["accuracy"] = Accuracy, ["valLoss"] = MeanLoss, ["valSamples"] = Samples };
        if (NumClasses >= 5) result["top5Accuracy"] = Top5Accuracy;
        return result;
    }
}
