using BeitV2.Ml.Devices;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>
/// One pass of a classifier over a split, accumulating <see cref="ClassificationMetrics"/>: the validation of the
/// fine-tuning and linear-probe trainers and the scoring of a registered classifier share it.
/// </summary>
public static class ClassificationEvaluation
{
    /// <summary>The trainers' validation: top-1 / top-5 accuracy and mean cross-entropy (<see cref="ClassificationMetrics.ToValidationMetrics"/>).</summary>
    internal static Dictionary<string, double> Run(ITrainingData data, Device device, Func<Tensor, Tensor> logitsOf, int numClasses,
        CancellationToken cancellationToken) =>
        Evaluate(data, device, logitsOf, numClasses, cancellationToken).ToValidationMetrics();

    /// <summary>
    /// Runs <paramref name="logitsOf"/> (the model, already in eval mode) on every batch of epoch 0 of <paramref name="data"/>
    /// (batches with <see cref="TrainingBatch.Labels"/>) and accumulates the scores. A cancellation stops after the current batch.
    /// </summary>
    /// <param name="gate">held for each batch while it runs on the device (shared with inference and training), when given.</param>
    /// <param name="afterBatch">called after each batch with the images it held and the scores so far.</param>
    public static ClassificationMetrics Evaluate(ITrainingData data, Device device, Func<Tensor, Tensor> logitsOf, int numClasses,
        CancellationToken cancellationToken, DeviceGate? gate = null, Action<int, ClassificationMetrics>? afterBatch = null)
    {
        var metrics = new ClassificationMetrics(numClasses);
        foreach (var b in (gate is null ? data : new GatedTrainingData(data, gate)).GetBatches(0))
        {
            using var batch = b;
            if (cancellationToken.IsCancellationRequested) break;
            using (NewDisposeScope())
            using (no_grad())
            {
                var labels = (batch.Labels ?? throw new InvalidOperationException("Evaluation batches need Labels.")).to(device);
                metrics.Update(logitsOf(batch.Images.to(device)), labels);
            }
            afterBatch?.Invoke(batch.Count, metrics);
        }
        return metrics;
    }
}
