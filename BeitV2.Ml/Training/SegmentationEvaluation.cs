using BeitV2.Ml.Devices;
using BeitV2.Ml.Models.Segmentation;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>
/// One pass of a segmenter over a split, accumulating <see cref="SegmentationMetrics"/> (mmseg's whole-split
/// areas): the validation of <see cref="SegmentationTrainer"/> and the scoring of a registered segmenter share it.
/// </summary>
public static class SegmentationEvaluation
{
    /// <summary>
    /// Predicts every batch of epoch 0 of <paramref name="data"/> (images with <see cref="TrainingBatch.Masks"/>) at the
    /// masks' resolution and accumulates the areas. The caller puts the model in eval mode. A cancellation stops after the
    /// current batch.
    /// </summary>
    /// <param name="gate">held for each batch while it runs on the device (shared with inference and training), when given.</param>
    /// <param name="afterBatch">called after each batch with the images it held and the scores so far.</param>
    public static SegmentationMetrics Evaluate(BeitSegmenter model, ITrainingData data, Device device, CancellationToken cancellationToken,
        DeviceGate? gate = null, Action<int, SegmentationMetrics>? afterBatch = null)
    {
        var metrics = new SegmentationMetrics(model.Config.NumClasses, model.Config.IgnoreIndex);
        foreach (var b in (gate is null ? data : new GatedTrainingData(data, gate)).GetBatches(0))
        {
            using var batch = b;
            if (cancellationToken.IsCancellationRequested) break;
            using (NewDisposeScope())
            {
                var masks = batch.Masks ?? throw new InvalidOperationException("Evaluation batches need Masks.");
                if (masks.dim() == 4) masks = masks.squeeze(1);
                var prediction = model.Predict(batch.Images.to(device), ((int)masks.shape[1], (int)masks.shape[2]));
                metrics.Update(prediction, masks.to(device));
            }
            afterBatch?.Invoke(batch.Count, metrics);
        }
        return metrics;
    }
}
