using BeitV2.Ml.Data;
using BeitV2.Ml.Devices;
using BeitV2.Ml.Models.Segmentation;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>
/// Shows a classifier and a segmenter the same Fashion-MNIST items, each alone: the classifier the 28 px item through its
/// evaluation transform, the segmenter the item centred on the scene canvas (<see cref="FashionMnistIsolatedItems"/>)
/// through its own, and counts how often each is right and how often they agree (<see cref="SegmenterClassifierAgreement"/>).
/// The segmenter's class map is read at the resolution of its input, against the item's mask resized as its validation
/// resizes masks (the segmentation evaluation transform).
/// </summary>
public static class SegmenterClassifierAgreementEvaluation
{
    /// <summary>
    /// Runs both models (already in eval mode) over <paramref name="items"/> in order. A cancellation stops after the
    /// current batch.
    /// </summary>
    /// <param name="classifierLogits">the classifier: images (B, 3, S, S) → logits (B, classes).</param>
    /// <param name="classifierTransform">the classifier's evaluation transform (its served preprocessing).</param>
    /// <param name="segmenterTransform">the segmenter's evaluation transform (one that produces masks).</param>
    /// <param name="scenes">the canvas size and threshold of the scenes (the scene set's defaults when null).</param>
    /// <param name="gate">held while each batch runs on the device, when given.</param>
    /// <param name="afterBatch">called after each batch with the items it held and the counts so far.</param>
    /// <exception cref="ArgumentException">the segmenter does not have exactly one class more than the classifier (the background).</exception>
    public static SegmenterClassifierAgreement Evaluate(Func<Tensor, Tensor> classifierLogits, int classifierClasses, ISampleTransform classifierTransform,
        BeitSegmenter segmenter, ISampleTransform segmenterTransform, FashionMnistDataset items, FashionMnistSegmentationOptions? scenes,
        Device device, CancellationToken cancellationToken, int batchSize = 64, int workers = 2, DeviceGate? gate = null,
        Action<int, SegmenterClassifierAgreement>? afterBatch = null)
    {
        ArgumentNullException.ThrowIfNull(classifierLogits);
        ArgumentNullException.ThrowIfNull(segmenter);
        int segmenterClasses = segmenter.Config.NumClasses;
        if (segmenterClasses != classifierClasses + 1)
            throw new ArgumentException(
                $"The segmenter has {segmenterClasses} classes and the classifier {classifierClasses}; the agreement needs the classifier's classes plus the background.",
                nameof(segmenter));
        if (!segmenterTransform.ProducesMask) throw new ArgumentException("The segmenter's transform must produce masks.", nameof(segmenterTransform));

        var options = new BatchLoaderOptions { BatchSize = batchSize, Shuffle = false, Workers = workers, Prefetch = false };
        var pictures = new BatchLoader(items, classifierTransform, options);
        var scenesLoader = new BatchLoader(new FashionMnistIsolatedItems(items, scenes), segmenterTransform, options);
        var result = new SegmenterClassifierAgreement(classifierClasses);
        for (int b = 0; b < pictures.BatchesPerEpoch; b++)
        {
            if (cancellationToken.IsCancellationRequested) break;
            using var picture = pictures.LoadBatch(0, b);
            using var scene = scenesLoader.LoadBatch(0, b);
            var masks = scene.Masks ?? throw new InvalidOperationException("The segmenter's transform returned no masks.");
            int height = (int)masks.shape[1], width = (int)masks.shape[2];
            long[] predicted, classMaps;
            using (gate?.Enter())
            using (NewDisposeScope())
            using (no_grad())
            {
                predicted = classifierLogits(picture.Images.to(device)).argmax(1).cpu().data<long>().ToArray();
                classMaps = segmenter.Predict(scene.Images.to(device), (height, width)).cpu().data<long>().ToArray();
            }
            var labels = picture.Labels.data<long>().ToArray();
            var itemMasks = masks.data<long>().ToArray();
            int plane = height * width;
            for (int i = 0; i < labels.Length; i++)
            {
                var reading = SegmenterClassifierAgreement.Read(itemMasks.AsSpan(i * plane, plane), classMaps.AsSpan(i * plane, plane),
                    segmenterClasses, segmenter.Config.IgnoreIndex);
                result.Add((int)labels[i], (int)predicted[i], reading);
            }
            afterBatch?.Invoke(labels.Length, result);
        }
        return result;
    }
}
