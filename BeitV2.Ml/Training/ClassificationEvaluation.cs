using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>Top-1 / top-5 accuracy and mean cross-entropy over a split.</summary>
internal static class ClassificationEvaluation
{
    public static Dictionary<string, double> Run(ITrainingData data, Device device, Func<Tensor, Tensor> logitsOf, int numClasses,
        CancellationToken cancellationToken)
    {
        double lossSum = 0;
        long correct = 0, correct5 = 0, total = 0;
        foreach (var b in data.GetBatches(0))
        {
            using var batch = b;
            if (cancellationToken.IsCancellationRequested) break;
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var labels = (batch.Labels ?? throw new InvalidOperationException("Evaluation batches need Labels.")).to(device).to(ScalarType.Int64);
            var logits = logitsOf(batch.Images.to(device));
            lossSum += nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum).to(float64).item<double>();
            correct += logits.argmax(-1).eq(labels).sum().item<long>();
            if (numClasses >= 5)
            {
                var top5 = logits.topk(5, dim: -1).indexes;
                correct5 += top5.eq(labels.unsqueeze(-1)).any(-1).sum().item<long>();
            }
            total += labels.shape[0];
        }
        if (total == 0) return new Dictionary<string, double>();
        var result = new Dictionary<string, double>
        {
            ["accuracy"] = (double)correct / total, ["valLoss"] = lossSum / total, ["valSamples"] = total,
        };
        if (numClasses >= 5) result["top5Accuracy"] = (double)correct5 / total;
        return result;
    }
}
