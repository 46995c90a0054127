using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Training;
using BeitV2.Web.Datasets;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using TorchSharp;

namespace BeitV2.Web.Evaluation;

/// <summary>
/// Does the segmenter name a garment as the classifier does? Both see the first N items of the Fashion-MNIST test split,
/// each alone: the classifier the 28 px image, the segmenter the item centred on the scene set's black canvas; each through
/// its own evaluation transform, as it is served (<see cref="ModelEvaluator.EvaluationTransform"/>). The segmenter's answer
/// for an item is the class most of the item's own pixels get (<see cref="SegmenterClassifierAgreement"/>). The issue's
/// bar: the segmenter agrees with the classifier at least as often as the classifier is right.
/// </summary>
public sealed class AgreementEvaluator(DatasetCatalog datasets, ModelRegistry registry, ComputeDevices devices, ModelEvaluator evaluator)
{
    /// <summary>
    /// Checks that <paramref name="segmenter"/> and <paramref name="classifier"/> (ids, names or <c>default:KIND</c>) can
    /// be compared on Fashion-MNIST items: a classifier of the 10 Fashion-MNIST classes and a segmenter of those plus the background.
    /// </summary>
    /// <exception cref="NotFoundException">no such model, or Fashion-MNIST is not available.</exception>
    /// <exception cref="InvalidRequestException">a model of another kind, or with other classes.</exception>
    public (ModelInfo Segmenter, ModelInfo Classifier) Check(string segmenter, string classifier)
    {
        var s = evaluator.ResolveModel(segmenter);
        var c = evaluator.ResolveModel(classifier);
        if (s.Kind != ApiModelKinds.Segmenter)
            throw new InvalidRequestException($"The agreement compares a segmenter with a classifier; '{s.Id}' is a {s.Kind}, give a segmenter as the model.");
        if (c.Kind != ApiModelKinds.Classifier)
            throw new InvalidRequestException($"The agreement compares a segmenter with a classifier; '{c.Id}' is a {c.Kind}, not a classifier.");
        IReadOnlyList<string> items = FashionMnistDataset.Classes;
        if (c.Classes != items.Count || registry.Labels(c.Id) is { Count: > 0 } cl && !cl.SequenceEqual(items))
            throw new InvalidRequestException(
                $"The agreement is measured on Fashion-MNIST items, and '{c.Id}' does not predict the 10 Fashion-MNIST classes ({string.Join(", ", items)}).");
        if (s.Classes != items.Count + 1 || registry.Labels(s.Id) is { Count: > 0 } sl && !sl.SequenceEqual(["background", .. items]))
            throw new InvalidRequestException(
                $"The agreement is measured on Fashion-MNIST items, and '{s.Id}' does not predict the classes of {DatasetCatalog.FashionMnistSeg} " +
                "(background, then the 10 Fashion-MNIST classes).");
        if (datasets.Find(DatasetCatalog.FashionMnist) is null)
            throw new NotFoundException($"The agreement needs the Fashion-MNIST test split, and '{DatasetCatalog.FashionMnist}' is not available on this server.");
        return (s, c);
    }

    /// <summary>Shows both models the first <paramref name="items"/> test items (all of them when the split is smaller), on a training device leased for the pass.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired (after the current batch).</exception>
    /// <exception cref="InvalidOperationException">a model's preprocessing cannot be applied, or the test split is gone.</exception>
    public AgreementResult Run(ModelInfo segmenter, ModelInfo classifier, int items, CancellationToken cancellationToken, int batchSize = 64, int workers = 2)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(items);
        using var lease = devices.LeaseTrainingDevice();
        var device = torch.device(lease.Device);
        var (_, test) = datasets.Open(DatasetCatalog.FashionMnist, 1, null, 0);
        if (test is not FashionMnistDataset split || split.Count == 0)
            throw new InvalidOperationException("The Fashion-MNIST test split is not available.");
        var first = split.Subset([.. Enumerable.Range(0, Math.Min(items, split.Count))]);

        using var segmenterPackage = ModelPackage.Load(registry.PackageDirectory(segmenter.Id), device);
        using var classifierPackage = ModelPackage.Load(registry.PackageDirectory(classifier.Id), device);
        var segmenterModel = segmenterPackage.As<BeitSegmenter>();
        var classifierModel = classifierPackage.As<BeitVisionTransformer>();
        segmenterModel.eval();
        classifierModel.eval();
        var (segmenterTransform, segmenterDescribe, _) = ModelEvaluator.EvaluationTransform(segmenterPackage);
        var (classifierTransform, classifierDescribe, _) = ModelEvaluator.EvaluationTransform(classifierPackage);
        var scenes = new FashionMnistSegmentationOptions();

        var counts = SegmenterClassifierAgreementEvaluation.Evaluate(classifierModel.forward, classifierModel.Config.NumClasses, classifierTransform,
            segmenterModel, segmenterTransform, first, scenes, device, cancellationToken, batchSize, workers, lease.Gate);
        cancellationToken.ThrowIfCancellationRequested();
        return new AgreementResult
        {
            Segmenter = segmenter.Id, Classifier = classifier.Id, Items = counts.Items,
            Setup = $"the first {counts.Items} Fashion-MNIST test images, each alone; the classifier: {classifierDescribe}; the segmenter: " +
                    $"the item unscaled at the centre of a black {scenes.CanvasSize} px scene canvas, {segmenterDescribe}; its answer is the class " +
                    $"most of the item's pixels (intensity above {scenes.Threshold}) get, background aside",
            ClassifierAccuracy = Rate(counts.ClassifierAccuracy), SegmenterAccuracy = Rate(counts.SegmenterAccuracy),
            Agreement = Rate(counts.Agreement), BackgroundShare = Rate(counts.BackgroundShare),
        };
    }

    private static double? Rate(double v) => double.IsFinite(v) ? v : null;
}
